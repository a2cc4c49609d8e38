"""The validated, frozen configuration of one Moonflower process.

`load_config` reads every source, checks every value, and raises one `ConfigError` that
lists all problems, so an operator fixes them in one go.
"""

import base64
import binascii
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pendulum

from moonflower import settings as s
from moonflower.compression import ALGORITHMS, LEVELS, Compression
from moonflower.cron import CronError, CronSchedule, parse_cron
from moonflower.durations import Period, parse_period
from moonflower.errors import ConfigError
from moonflower.redact import redactor
from moonflower.settings import Setting
from moonflower.sources import Layers, RawValue, load_toml

CONFIG_PATH_ENV = "MOONFLOWER_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/moonflower/moonflower.toml")
"""Read when present and neither --config nor MOONFLOWER_CONFIG names a file (containers)."""
DEFAULT_PG_PORT = 5432
DEFAULT_S3_REGION = "us-west-1"
DEFAULT_S3_MAX_ATTEMPTS = 5
DEFAULT_WEBHOOK_TIMEOUT = 10
CHECKSUM_MODES = ("when_supported", "when_required")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
POSTGRES_MAX_NAME_BYTES = 63
MIN_PASSPHRASE_LENGTH = 8
MAX_JOBS = 32
ALL_DATABASES = "*"
FORMATS = ("plain", "custom")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
ARMOR_START = "-----BEGIN PGP"

T = TypeVar("T")


@dataclass(frozen=True)
class PostgresConfig:
    databases: tuple[str, ...]
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    pg_dump_path: Path | None = None
    exclude: tuple[str, ...] = ()
    """Shell-style patterns of databases to leave out when `databases` is ("*",)."""
    globals: bool = False
    """Also back up roles and tablespaces (pg_dumpall --globals-only)."""

    @property
    def all_databases(self) -> bool:
        return self.databases == (ALL_DATABASES,)


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    region: str
    bucket: str
    prefix: str
    """S3_PATH without leading, trailing or doubled slashes; empty for the bucket root."""
    access_key: str | None
    secret_key: str | None = field(repr=False)
    checksum: str = "when_supported"
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    governance: Period | None = None
    """How long each backup is locked in GOVERNANCE mode (S3_GOVERNANCE)."""
    expires_in: Period | None = None
    """How long backups are kept before prune deletes them (S3_EXPIRES_IN)."""


@dataclass(frozen=True)
class BackupConfig:
    spool_dir: Path
    on_start: bool = False
    compression: Compression = field(default_factory=Compression)
    jobs: int = 1
    """How many databases are backed up at once (BACKUP_JOBS)."""
    format: str = "plain"
    """"plain" SQL (compressed by a pipeline stage) or pg_dump's "custom" format."""
    state_dir: Path | None = None
    """Where the status file lives (BACKUP_STATE_DIR); the system temp directory when unset."""

    @property
    def state_directory(self) -> Path:
        return self.state_dir or Path(tempfile.gettempdir())


@dataclass(frozen=True)
class KeyBlock:
    data: bytes
    """The key as given: ASCII-armored text or binary OpenPGP packets."""
    origin: str
    """The setting it came from, for error messages."""


@dataclass(frozen=True)
class EncryptionConfig:
    passphrase: str | None = field(default=None, repr=False)
    public_key: KeyBlock | None = None
    private_key: KeyBlock | None = field(default=None, repr=False)
    """For restore and verify only: the key that decrypts public-key backups."""
    private_key_passphrase: str | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.passphrase is not None or self.public_key is not None


@dataclass(frozen=True)
class WebhookConfig:
    start: str | None = None
    success: str | None = None
    failure: str | None = None
    post_logs: bool = False
    timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    """Seconds to connect and to wait for an answer, per attempt."""


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"
    level: str = "info"


@dataclass(frozen=True)
class Config:
    postgres: PostgresConfig
    s3: S3Config
    backup: BackupConfig
    logging: LoggingConfig
    encryption: EncryptionConfig = EncryptionConfig()
    schedule: CronSchedule | None = None
    webhooks: WebhookConfig = WebhookConfig()
    warnings: tuple[str, ...] = ()


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
            return parse(raw)
        except ValueError as error:
            self.problems.append(f"{raw.origin}: {error}")
            return default

    def required(self, setting: Setting, parse: Callable[[RawValue], T]) -> T | None:
        raw = self.layers.get(setting)
        if raw is None:
            self.problems.append(f"{setting.env}: required, not set")
            return None
        try:
            return parse(raw)
        except ValueError as error:
            self.problems.append(f"{raw.origin}: {error}")
            return None


def text(raw: RawValue) -> str:
    if not isinstance(raw.value, str):
        raise ValueError(f"expected a string, got {type(raw.value).__name__}")
    if not raw.value.strip():
        raise ValueError("must not be empty")
    return raw.value.strip()


def secret_text(raw: RawValue) -> str:
    if not isinstance(raw.value, str):
        raise ValueError("expected a string")
    if raw.value == "":
        raise ValueError("must not be empty")
    return raw.value


def port_number(raw: RawValue) -> int:
    value = raw.value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError(f'expected a port number, got "{raw.value}"')
    return value


def whole_number(low: int, high: int) -> Callable[[RawValue], int]:
    def parse(raw: RawValue) -> int:
        value = raw.value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f'expected a whole number from {low} to {high}, got "{raw.value}"')
        return value

    return parse


def one_of(choices: Sequence[str]) -> Callable[[RawValue], str]:
    def parse(raw: RawValue) -> str:
        value = text(raw).lower()
        if value not in choices:
            raise ValueError(f'expected one of {", ".join(choices)}, got "{raw.value}"')
        return value

    return parse


def database_names(raw: RawValue) -> tuple[str, ...]:
    if isinstance(raw.value, str):
        names = raw.value.split()
    elif isinstance(raw.value, list) and all(isinstance(item, str) for item in raw.value):
        names = [name.strip() for name in raw.value if name.strip()]
    else:
        raise ValueError("expected a list of database names")
    if not names:
        raise ValueError("no database names given")
    if ALL_DATABASES in names and len(names) > 1:
        raise ValueError(f'"{ALL_DATABASES}" means every database: give it alone')
    for name in names:
        if len(name.encode("utf-8")) > POSTGRES_MAX_NAME_BYTES:
            raise ValueError(f'database name "{name}" is longer than 63 bytes')
        if "\x00" in name:
            raise ValueError("database names cannot contain NUL characters")
    return tuple(dict.fromkeys(names))


def name_patterns(raw: RawValue) -> tuple[str, ...]:
    if isinstance(raw.value, str):
        return tuple(raw.value.split())
    if isinstance(raw.value, list) and all(isinstance(item, str) for item in raw.value):
        return tuple(item for item in raw.value if item.strip())
    raise ValueError("expected a list of database names or patterns")


def endpoint_url(raw: RawValue) -> str:
    value = text(raw)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f'expected an http:// or https:// URL, got "{value}"')
    return value.rstrip("/")


def s3_prefix(raw: RawValue) -> str:
    if not isinstance(raw.value, str):
        raise ValueError("expected a string")
    parts = [part for part in raw.value.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f'"{raw.value}" holds "." or ".." segments; give a plain folder path')
    return "/".join(parts)


def user_path(value: str) -> Path:
    """`~` expanded; an unknown `~user` is a plain error, not a crash."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ValueError(f'cannot expand "{value}": no such user') from None


def executable_path(raw: RawValue) -> Path:
    path = user_path(text(raw))
    candidate = path / "pg_dump" if path.is_dir() else path
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise ValueError(f"{candidate} is not an executable pg_dump")
    return candidate


def writable_directory(raw: RawValue) -> Path:
    path = user_path(text(raw))
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{path} is not writable")
    return path


def period(raw: RawValue) -> Period:
    return parse_period(text(raw))


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


def webhook_url(raw: RawValue) -> str:
    value = text(raw)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return value


def any_value_is_on(raw: RawValue) -> bool:
    """The original image turned WEBHOOK_POST_LOGS on with any value; we also accept "off"."""
    if isinstance(raw.value, bool):
        return raw.value
    return text(raw).lower() not in FALSE_WORDS


def boolean(raw: RawValue) -> bool:
    if isinstance(raw.value, bool):
        return raw.value
    value = text(raw).lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f'expected true or false, got "{raw.value}"')


def cron_schedule(raw: RawValue) -> CronSchedule:
    try:
        return parse_cron(text(raw), pendulum.local_timezone())
    except CronError as error:
        raise ValueError(str(error)) from None


def passphrase(raw: RawValue) -> str:
    value = secret_text(raw)
    if len(value) < MIN_PASSPHRASE_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSPHRASE_LENGTH} characters long")
    if "\n" in value or "\r" in value:
        raise ValueError("must not contain line breaks")
    return value


def key_bytes(raw: RawValue, how_to_encode: str) -> bytes:
    """The base64 of an armored key (as the old README made it), or the armored key itself."""
    value = text(raw)
    if value.startswith(ARMOR_START):
        return value.encode("utf-8")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not valid base64 ({how_to_encode})") from None


def public_key_block(raw: RawValue) -> KeyBlock:
    data = key_bytes(raw, "encode the armored public key with `base64 -w 0 public.asc`")
    if b"PRIVATE KEY BLOCK" in data[:200]:
        raise ValueError("this is a private key; give the public key (gpg --export --armor KEY_ID)")
    return KeyBlock(data, raw.origin)


def private_key_block(raw: RawValue) -> KeyBlock:
    data = key_bytes(raw, "encode the armored private key with `base64 -w 0 private.asc`")
    redactor.add(data.decode("utf-8", "replace"))
    if b"PRIVATE KEY BLOCK" not in data[:200]:
        raise ValueError("not an ASCII-armored private key (gpg --export-secret-keys --armor)")
    return KeyBlock(data, raw.origin)


def s3_credentials(validator: Validator) -> tuple[str | None, str | None, list[str]]:
    """Access key id and secret, accepting the old quick start's S3_KEY_ID spelling."""
    layers = validator.layers
    access_key = validator.optional(s.S3_ACCESS_KEY, text, None)
    secret_key = validator.optional(s.S3_SECRET_KEY, secret_text, None)
    legacy_key_id = layers.env(s.S3_KEY_ID_LEGACY)
    warnings: list[str] = []
    if legacy_key_id is not None and secret_key is None:
        redactor.add(access_key)
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


def load_config(
    environ: Mapping[str, str],
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read and validate everything; raise ConfigError listing every problem found."""
    problems: list[str] = []
    if config_path is not None:
        document = load_toml(config_path, "--config", problems)
    elif environ.get(CONFIG_PATH_ENV, "").strip():
        document = load_toml(Path(environ[CONFIG_PATH_ENV].strip()), CONFIG_PATH_ENV, problems)
    elif DEFAULT_CONFIG_PATH.is_file():
        document = load_toml(DEFAULT_CONFIG_PATH, str(DEFAULT_CONFIG_PATH), problems)
    else:
        document = {}
    flagged = {
        name: RawValue(value, f"--{flag}") for name, (flag, value) in (overrides or {}).items()
    }
    layers = Layers(environ, document, flagged, problems)
    validator = Validator(layers)

    databases = validator.required(s.PG_DATABASES, database_names)
    host = validator.required(s.PG_HOST, text)
    port = validator.optional(s.PG_PORT, port_number, DEFAULT_PG_PORT)
    user = validator.required(s.PG_USER, text)
    password = validator.required(s.PG_PASSWORD, secret_text)
    pg_dump_path = validator.optional(s.PG_DUMP_PATH, executable_path, None)
    exclude = validator.optional(s.PG_EXCLUDE_DATABASES, name_patterns, ())
    dump_globals = validator.optional(s.PG_GLOBALS, boolean, False)

    endpoint = validator.required(s.S3_ENDPOINT, endpoint_url)
    region = validator.optional(s.S3_REGION, text, DEFAULT_S3_REGION)
    bucket = validator.required(s.S3_BUCKET, text)
    prefix = validator.optional(s.S3_PATH, s3_prefix, "")
    access_key, secret_key, warnings = s3_credentials(validator)
    checksum = validator.optional(s.S3_CHECKSUM, one_of(CHECKSUM_MODES), CHECKSUM_MODES[0])
    max_attempts = validator.optional(
        s.S3_MAX_ATTEMPTS, whole_number(1, 20), DEFAULT_S3_MAX_ATTEMPTS
    )
    governance = validator.optional(s.S3_GOVERNANCE, period, None)
    expires_in = validator.optional(s.S3_EXPIRES_IN, period, None)
    warnings.extend(retention_warnings(governance, expires_in))

    spool_dir = validator.optional(
        s.BACKUP_SPOOL_DIR, writable_directory, Path(tempfile.gettempdir())
    )
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
    webhooks = WebhookConfig(
        start=validator.optional(s.WEBHOOK_START, webhook_url, None),
        success=validator.optional(s.WEBHOOK_SUCCESS, webhook_url, None),
        failure=validator.optional(s.WEBHOOK_FAILURE, webhook_url, None),
        post_logs=validator.optional(s.WEBHOOK_POST_LOGS, any_value_is_on, False),
        timeout=validator.optional(s.WEBHOOK_TIMEOUT, whole_number(1, 60), DEFAULT_WEBHOOK_TIMEOUT),
    )
    on_start = validator.optional(s.BACKUP_ON_START, boolean, False)
    algorithm = validator.optional(s.BACKUP_COMPRESSION, one_of(ALGORITHMS), "gzip")
    level = None
    if algorithm in LEVELS:
        low, high, _ = LEVELS[algorithm]
        level = validator.optional(s.BACKUP_COMPRESSION_LEVEL, whole_number(low, high), None)
    jobs = validator.optional(s.BACKUP_JOBS, whole_number(1, MAX_JOBS), 1)
    state_dir = validator.optional(s.BACKUP_STATE_DIR, writable_directory, None)
    dump_format = validator.optional(s.BACKUP_FORMAT, one_of(FORMATS), "plain")
    schedule = validator.optional(s.SCHEDULE, cron_schedule, None)
    log_format = validator.optional(s.LOG_FORMAT, one_of(LOG_FORMATS), "text")
    log_level = validator.optional(s.LOG_LEVEL, one_of(LOG_LEVELS), "info")

    problems.extend(validator.problems)
    if problems:
        raise ConfigError([redactor.mask(problem) for problem in problems])
    # Every required value is present once there are no problems; this narrows the types.
    assert databases is not None
    assert host is not None
    assert user is not None
    assert password is not None
    assert endpoint is not None
    assert bucket is not None
    return Config(
        postgres=PostgresConfig(
            databases, host, port, user, password, pg_dump_path, exclude, dump_globals
        ),
        s3=S3Config(
            endpoint,
            region,
            bucket,
            prefix,
            access_key,
            secret_key,
            checksum,
            max_attempts,
            governance,
            expires_in,
        ),
        backup=BackupConfig(
            spool_dir, on_start, Compression(algorithm, level), jobs, dump_format, state_dir
        ),
        logging=LoggingConfig(log_format, log_level),
        encryption=encryption,
        schedule=schedule,
        webhooks=webhooks,
        warnings=tuple(warnings),
    )
