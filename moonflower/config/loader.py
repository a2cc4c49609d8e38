"""Building the configuration: `load_config` reads every source, checks every value, and
raises one `ConfigError` that lists all problems, so an operator fixes them in one go.
"""

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pendulum

from moonflower.config import settings as s
from moonflower.config.clusters import CLUSTERS
from moonflower.config.clusters import NAME as CLUSTER_NAME
from moonflower.config.compression import LEVELS, Algorithm, Compression
from moonflower.config.durations import Period
from moonflower.config.masking import register_secrets
from moonflower.config.model import (
    DEFAULT_S3_MAX_ATTEMPTS,
    DEFAULT_WEBHOOK_TIMEOUT,
    BackupConfig,
    ChecksumMode,
    Config,
    DumpFormat,
    EncryptionConfig,
    LoggingConfig,
    PostgresConfig,
    S3Config,
    WebhookConfig,
)
from moonflower.config.monitoring import monitoring_config
from moonflower.config.physical import wal_config
from moonflower.config.replicas import REPLICAS, replica_configs
from moonflower.config.retention import retention_config
from moonflower.config.settings import Setting
from moonflower.config.sources import ClusterLayers, Layers, RawValue, load_toml
from moonflower.config.unknown import unknown_variables
from moonflower.config.values import (
    any_value_is_on,
    boolean,
    cron_schedule,
    database_names,
    endpoint_url,
    executable_path,
    member_of,
    name_patterns,
    one_of,
    passphrase,
    period,
    port_number,
    private_key_block,
    public_key_block,
    region_name,
    s3_prefix,
    secret_text,
    text,
    webhook_url,
    whole_number,
    writable_directory,
)
from moonflower.core.errors import ConfigError
from moonflower.core.redact import redactor

DEFAULT_CONFIG_PATH = Path("/etc/moonflower/moonflower.toml")
"""Read when present and neither --config nor MOONFLOWER_CONFIG names a file (containers)."""
DEFAULT_PG_PORT = 5432
DEFAULT_S3_REGION = "us-west-1"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_JOBS = 32

T = TypeVar("T")
DEFAULT_LOCK_WAIT = Period("10 minutes", pendulum.duration(minutes=10))
"""Long enough for a migration's lock to pass; a dump stuck behind one fails instead of
waiting forever."""
DEFAULT_DUMP_TIMEOUT = Period("24 hours", pendulum.duration(hours=24))
"""A nightly dump still running after a day is stuck, not slow."""
MAY_SPAN_LINES = frozenset(
    {
        s.PG_DATABASES.env,
        s.PG_EXCLUDE_DATABASES.env,
        s.ENCRYPTION_PUBLIC_KEY.env,
        s.ENCRYPTION_PRIVATE_KEY.env,
        s.NOTIFY_URLS.env,
    }
)
NO_PATTERNS: tuple[str, ...] = ()
NO_DATABASES: tuple[str, ...] = ()


class Validator:
    """Turns raw values into typed ones, recording a problem for each bad value."""

    def __init__(self, layers: Layers) -> None:
        self.layers = layers
        self.problems: list[str] = []

    def optional(self, setting: Setting, parse: Callable[[RawValue], T], default: T) -> T:
        raw = self.layers.get(setting)
        if raw is None:
            return default
        try:
            return parse(checked_characters(setting, raw))
        except ValueError as error:
            self.problems.append(f"{raw.origin}: {error}")
            return default

    def required(self, setting: Setting, parse: Callable[[RawValue], T]) -> T | None:
        raw = self.layers.get(setting)
        if raw is None:
            if setting.env not in self.layers.reported:
                self.problems.append(f"{setting.env}: required, not set")
            return None
        try:
            return parse(checked_characters(setting, raw))
        except ValueError as error:
            self.problems.append(f"{raw.origin}: {error}")
            return None


def checked_characters(setting: Setting, raw: RawValue) -> RawValue:
    """No value may hide a line break or another control character (a pasted secret with a
    newline, a name with a tab); lists and key blocks may span lines."""
    allowed = "\n\r\t" if setting.env in MAY_SPAN_LINES else ""
    texts = raw.value if isinstance(raw.value, list) else [raw.value]
    for value in texts:
        if isinstance(value, str) and any(
            not char.isprintable() and char != " " and char not in allowed for char in value
        ):
            raise ValueError("contains a line break or another control character")
    return raw


def retention_warnings(governance: Period | None, expires_in: Period | None) -> list[str]:
    if governance is None or expires_in is None:
        return []
    now = pendulum.now("UTC")
    if governance.after(now) > expires_in.after(now):
        return [
            f'S3_GOVERNANCE ("{governance}") is longer than S3_EXPIRES_IN ("{expires_in}"): '
            "backups outlive their expiry until their lock lapses, and prune deletes them then"
        ]
    return []


def s3_credentials(validator: Validator) -> tuple[str | None, str | None, list[str]]:
    """Access key id and secret, accepting the old quick start's S3_KEY_ID spelling."""
    layers = validator.layers
    access_key = validator.optional(s.S3_ACCESS_KEY, text, None)
    secret_key = validator.optional(s.S3_SECRET_KEY, secret_text, None)
    legacy_key_id = layers.env(s.S3_KEY_ID_LEGACY)
    warnings: list[str] = []
    if legacy_key_id is not None and secret_key is None:
        warnings.append(
            "S3_KEY_ID and S3_ACCESS_KEY are read as the old quick start meant them (key id "
            "and secret). Please rename them: S3_ACCESS_KEY=<key id>, S3_SECRET_KEY=<secret>."
        )
        access_key, secret_key = legacy_key_id, access_key
        if secret_key is None:
            validator.problems.append("S3_KEY_ID: set, but S3_ACCESS_KEY (its secret) is not")
    elif (access_key is None) != (secret_key is None):
        missing = s.S3_SECRET_KEY.env if secret_key is None else s.S3_ACCESS_KEY.env
        validator.problems.append(
            f"{missing}: required when the other S3 key is set (or set neither to use "
            "the default AWS credential chain)"
        )
    return access_key, secret_key, warnings


def system_temp_directory(validator: Validator) -> Path | None:
    """The default spool directory, looked up only when BACKUP_SPOOL_DIR is not set."""
    try:
        return Path(tempfile.gettempdir())
    except OSError:
        validator.problems.append(
            f"{s.BACKUP_SPOOL_DIR.env}: not set, and there is no writable temporary directory; "
            "set it to a directory with room for the compressed dumps"
        )
        return None


ALL_OF_POSTGRES = frozenset({"PG_DATABASES", "PG_HOST", "PG_USER", "PG_PASSWORD"})


def load_config(
    environ: Mapping[str, str],
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    postgres_needs: frozenset[str] = ALL_OF_POSTGRES,
    notifying: bool = True,
) -> Config:
    """Read and validate everything; raise ConfigError listing every problem found.
    `postgres_needs`: the PG_* settings the command needs (WAL archive commands: none, a
    base backup: no database list); `notifying`: NOTIFY_URLS are checked with Apprise.
    With clusters ([cluster.<name>] or CLUSTER_<NAME>_...), the top level needs no PG_*
    setting and each cluster is a Config of its own in `clusters`."""
    problems: list[str] = unknown_variables(environ)
    document: dict[str, Any] | None = {}
    if config_path is not None:
        document = load_toml(config_path, "--config", problems)
    elif environ.get(s.CONFIG_PATH_ENV, "").strip():
        document = load_toml(Path(environ[s.CONFIG_PATH_ENV].strip()), s.CONFIG_PATH_ENV, problems)
    elif DEFAULT_CONFIG_PATH.is_file():
        document = load_toml(DEFAULT_CONFIG_PATH, str(DEFAULT_CONFIG_PATH), problems)
    if document is None:  # the file that was meant cannot be read: that is the one problem
        raise ConfigError([redactor.mask(problem) for problem in problems])
    flagged = {
        name: RawValue(value, f"--{flag}") for name, (flag, value) in (overrides or {}).items()
    }
    names = CLUSTERS.names(environ, document)
    top = assembled(
        Layers(environ, document, flagged, problems),
        frozenset() if names else postgres_needs,
        notifying,
    )
    clusters = []
    for name in names:
        if not CLUSTER_NAME.fullmatch(name):
            problems.append(
                f"[cluster.{name}]: a cluster's name is lower-case letters, digits and - only"
            )
            continue
        layers = ClusterLayers(name, environ, document, flagged, problems)
        clusters.append(assembled(layers, postgres_needs, notifying, cluster=name))
    problems.extend(path_clashes(names, clusters))
    if problems:
        unique = list(dict.fromkeys(redactor.mask(problem) for problem in problems))
        raise ConfigError(unique)
    assert top is not None
    return replace(top, clusters=tuple(cluster for cluster in clusters if cluster is not None))


def joined(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def path_clashes(names: list[str], clusters: "list[Config | None]") -> list[str]:
    """Two clusters whose objects would meet: the same path, or one inside the other."""
    paths = [(c.cluster, c.s3.prefix) for c in clusters if c is not None and c.cluster]
    problems = []
    for position, (name, path) in enumerate(paths):
        for other, other_path in paths[position + 1 :]:
            inside = (
                path == other_path
                or f"{other_path}/".startswith(f"{path}/")
                or (f"{path}/".startswith(f"{other_path}/"))
            )
            if inside:
                problems.append(
                    f"[cluster.{name}] and [cluster.{other}]: the same S3 path or one inside "
                    f'the other ("{path}", "{other_path}"); give each cluster a path of its own'
                )
    return problems


def assembled(
    layers: Layers,
    postgres_needs: frozenset[str],
    notifying: bool,
    cluster: str | None = None,
) -> Config | None:
    """One Config from `layers` (the top level's, or one cluster's view); None when a
    problem was found (each one added to the layers' list)."""
    problems = layers.problems
    validator = Validator(layers)

    def postgres(setting: Setting, parse: Callable[[RawValue], T], unused: T) -> T | None:
        if setting.env in postgres_needs:
            return validator.required(setting, parse)
        return validator.optional(setting, parse, unused)

    databases = postgres(s.PG_DATABASES, database_names, NO_DATABASES)
    host = postgres(s.PG_HOST, text, "")
    port = validator.optional(s.PG_PORT, port_number, DEFAULT_PG_PORT)
    user = postgres(s.PG_USER, text, "")
    password = postgres(s.PG_PASSWORD, secret_text, "")
    pg_dump_path = validator.optional(s.PG_DUMP_PATH, executable_path, None)
    exclude = validator.optional(s.PG_EXCLUDE_DATABASES, name_patterns, NO_PATTERNS)
    dump_globals = validator.optional(s.PG_GLOBALS, boolean, False)
    lock_wait = validator.optional(s.PG_LOCK_WAIT_TIMEOUT, period, DEFAULT_LOCK_WAIT)

    endpoint = validator.required(s.S3_ENDPOINT, endpoint_url)
    region = validator.optional(s.S3_REGION, region_name, DEFAULT_S3_REGION)
    bucket = validator.required(s.S3_BUCKET, text)
    prefix = validator.optional(s.S3_PATH, s3_prefix, "")
    if isinstance(layers, ClusterLayers) and layers.own(s.S3_PATH) is None:
        prefix = joined(prefix, layers.name)  # S3_PATH/<name>/, unless it has its own path
    access_key, secret_key, warnings = s3_credentials(validator)
    checksum = validator.optional(
        s.S3_CHECKSUM, member_of(ChecksumMode), ChecksumMode.WHEN_SUPPORTED
    )
    max_attempts = validator.optional(
        s.S3_MAX_ATTEMPTS, whole_number(1, 20), DEFAULT_S3_MAX_ATTEMPTS
    )
    governance = validator.optional(s.S3_GOVERNANCE, period, None)
    expires_in = validator.optional(s.S3_EXPIRES_IN, period, None)
    retention = retention_config(validator)
    warnings.extend(retention_warnings(governance, expires_in))

    spool_dir = validator.optional(s.BACKUP_SPOOL_DIR, writable_directory, None)
    if spool_dir is None and s.BACKUP_SPOOL_DIR.env not in layers.reported:
        spool_dir = system_temp_directory(validator)
    encryption = EncryptionConfig(
        passphrase=validator.optional(s.ENCRYPTION_PASSPHRASE, passphrase, None),
        public_key=validator.optional(s.ENCRYPTION_PUBLIC_KEY, public_key_block, None),
        private_key=validator.optional(s.ENCRYPTION_PRIVATE_KEY, private_key_block, None),
        private_key_passphrase=validator.optional(
            s.ENCRYPTION_PRIVATE_KEY_PASSPHRASE, secret_text, None
        ),
    )
    if encryption.passphrase is not None and encryption.public_key is not None:
        problems.append(
            "ENCRYPTION_PASSPHRASE and ENCRYPTION_PUBLIC_KEY: set only one of them "
            "(symmetric or public-key encryption)"
        )
    if dump_globals and not encryption.enabled:
        warnings.append(
            "PG_GLOBALS: the globals include the roles' password hashes, and backups are not "
            "encrypted; set ENCRYPTION_PASSPHRASE or ENCRYPTION_PUBLIC_KEY"
        )
    webhooks = WebhookConfig(
        start=validator.optional(s.WEBHOOK_START, webhook_url, None),
        success=validator.optional(s.WEBHOOK_SUCCESS, webhook_url, None),
        failure=validator.optional(s.WEBHOOK_FAILURE, webhook_url, None),
        post_logs=validator.optional(s.WEBHOOK_POST_LOGS, any_value_is_on, False),
        timeout=validator.optional(s.WEBHOOK_TIMEOUT, whole_number(1, 60), DEFAULT_WEBHOOK_TIMEOUT),
    )
    on_start = validator.optional(s.BACKUP_ON_START, boolean, False)
    algorithm = validator.optional(s.BACKUP_COMPRESSION, member_of(Algorithm), Algorithm.GZIP)
    level = None
    if algorithm in LEVELS:
        low, high, _ = LEVELS[algorithm]
        level = validator.optional(s.BACKUP_COMPRESSION_LEVEL, whole_number(low, high), None)
    jobs = validator.optional(s.BACKUP_JOBS, whole_number(1, MAX_JOBS), 1)
    state_dir = validator.optional(s.BACKUP_STATE_DIR, writable_directory, None)
    dump_timeout = validator.optional(s.BACKUP_TIMEOUT, period, DEFAULT_DUMP_TIMEOUT)
    dump_format = validator.optional(s.BACKUP_FORMAT, member_of(DumpFormat), DumpFormat.PLAIN)
    schedule = validator.optional(s.SCHEDULE, cron_schedule, None)
    log_format = validator.optional(s.LOG_FORMAT, one_of(LOG_FORMATS), "text")
    log_level = validator.optional(s.LOG_LEVEL, one_of(LOG_LEVELS), "info")
    wal = wal_config(validator)
    monitoring = monitoring_config(validator, notifying)

    primary = S3Config(
        endpoint=endpoint or "",
        region=region,
        bucket=bucket or "",
        prefix=prefix,
        access_key=access_key,
        secret_key=secret_key,
        checksum=checksum,
        max_attempts=max_attempts,
        governance=governance,
        expires_in=expires_in,
        retention=retention,
    )
    replicas = replica_configs(validator, primary, REPLICAS.names(layers.environ, layers.document))
    if cluster is not None:  # a replica with a path of its own: the cluster's folder in it
        replicas = tuple(
            r
            if r.s3.prefix == prefix
            else replace(r, s3=replace(r.s3, prefix=joined(r.s3.prefix, cluster)))
            for r in replicas
        )
    register_secrets(layers, secret_key, encryption.private_key)
    for replica in replicas:
        redactor.add(replica.s3.secret_key)
    problems.extend(validator.problems)
    if problems:
        return None
    # Every required value is present once there are no problems; this narrows the types.
    assert databases is not None
    assert host is not None
    assert user is not None
    assert password is not None
    assert endpoint is not None
    assert spool_dir is not None
    assert bucket is not None
    return Config(
        postgres=PostgresConfig(
            databases=databases,
            host=host,
            port=port,
            user=user,
            password=password,
            pg_dump_path=pg_dump_path,
            exclude=exclude,
            globals=dump_globals,
            lock_wait_timeout=lock_wait,
        ),
        s3=primary,
        backup=BackupConfig(
            spool_dir=spool_dir,
            on_start=on_start,
            compression=Compression(algorithm, level),
            jobs=jobs,
            format=dump_format,
            state_dir=state_dir,
            timeout=dump_timeout,
            cluster=cluster,
        ),
        logging=LoggingConfig(format=log_format, level=log_level),
        encryption=encryption,
        schedule=schedule,
        webhooks=webhooks,
        wal=wal,
        monitoring=monitoring,
        replicas=replicas,
        warnings=tuple(warnings),
        cluster=cluster,
    )
