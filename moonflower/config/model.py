"""The validated, frozen configuration of one Moonflower process: what every other package
receives, built once by `config.loader.load_config`."""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from moonflower.config.compression import Compression
from moonflower.config.cron import CronSchedule
from moonflower.config.durations import Period
from moonflower.config.values import ALL_DATABASES, KeyBlock

DEFAULT_S3_MAX_ATTEMPTS = 5
DEFAULT_WEBHOOK_TIMEOUT = 10


class ChecksumMode(StrEnum):
    """S3_CHECKSUM: botocore's request_checksum_calculation / response_checksum_validation."""

    WHEN_SUPPORTED = "when_supported"
    WHEN_REQUIRED = "when_required"


class DumpFormat(StrEnum):
    PLAIN = "plain"
    """Plain SQL, compressed by a pipeline stage."""
    CUSTOM = "custom"
    """pg_dump's custom format, compressed by pg_dump itself."""


@dataclass(frozen=True, kw_only=True)
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
    lock_wait_timeout: Period | None = None
    """How long pg_dump may wait for a table lock before it gives up (PG_LOCK_WAIT_TIMEOUT)."""

    @property
    def all_databases(self) -> bool:
        return self.databases == (ALL_DATABASES,)


DEFAULT_PRUNE_MAX_DELETE = 50
KEEP_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """Keep rules in the manner of `restic forget --keep-*`: how many of the newest backups,
    and of the newest per hour, day, ISO week, month and year, each rule keeps (None: unset)."""

    last: int | None = None
    hourly: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None
    timezone: str = "UTC"
    """The calendar the periods follow (BACKUP_KEEP_TIMEZONE)."""
    max_delete_percent: int = DEFAULT_PRUNE_MAX_DELETE
    """A prune deleting more of one database's backups than this is refused."""

    @property
    def rules(self) -> dict[str, int]:
        """The rules that are set, in KEEP_RULES order."""
        counts = {rule: getattr(self, rule) for rule in KEEP_RULES}
        return {rule: count for rule, count in counts.items() if count is not None}

    @property
    def has_rules(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True, kw_only=True)
class S3Config:
    endpoint: str
    region: str
    bucket: str
    prefix: str
    """S3_PATH without leading, trailing or doubled slashes; empty for the bucket root."""
    access_key: str | None
    secret_key: str | None = field(repr=False)
    checksum: ChecksumMode = ChecksumMode.WHEN_SUPPORTED
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    governance: Period | None = None
    """How long each backup is locked in GOVERNANCE mode (S3_GOVERNANCE)."""
    expires_in: Period | None = None
    """How long backups are kept before prune deletes them (S3_EXPIRES_IN); with keep rules,
    how long every backup is kept whatever the rules say."""
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    @property
    def prunes(self) -> bool:
        """Whether anything tells prune what to delete."""
        return self.expires_in is not None or self.retention.has_rules

    @property
    def expiry_date_applies(self) -> bool:
        """Only S3_EXPIRES_IN alone gives a backup a known deletion date; keep rules may keep
        it for years, so no Expires is then claimed."""
        return self.expires_in is not None and not self.retention.has_rules


@dataclass(frozen=True, kw_only=True)
class BackupConfig:
    spool_dir: Path
    on_start: bool = False
    compression: Compression = field(default_factory=Compression)
    jobs: int = 1
    """How many databases are backed up at once (BACKUP_JOBS)."""
    format: DumpFormat = DumpFormat.PLAIN
    state_dir: Path | None = None
    """Where the status file and the upload journal live (BACKUP_STATE_DIR); a private
    per-user directory in the system temp directory when unset (runtime.state_dir)."""
    timeout: Period | None = None
    """How long one database's dump may take before it is stopped (BACKUP_TIMEOUT)."""
    cluster: str | None = None
    """The cluster these settings are of: its state lives in a directory of its own."""


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
    """Seconds one attempt may take as a whole: connect, send, answer."""


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"
    level: str = "info"


DEFAULT_REPLICATION_SLOT = "moonflower"
DEFAULT_WAL_PUSH_SECONDS = 5.0
DEFAULT_WAL_SPOOL_LIMIT = 10 * 1024**3
DEFAULT_FULL_EVERY = 7


@dataclass(frozen=True)
class WalConfig:
    """Physical backups: WAL streamed by a supervised pg_receivewal, and base backups."""

    stream: bool = False
    slot: str = DEFAULT_REPLICATION_SLOT
    push_interval: float = DEFAULT_WAL_PUSH_SECONDS
    """How often the segment being written is uploaded while it grows (the RPO)."""
    spool_limit: int = DEFAULT_WAL_SPOOL_LIMIT
    """Bytes of WAL waiting for S3 in the spool before the alarm is raised."""
    basebackup_schedule: CronSchedule | None = None
    incremental: bool = False
    """Base backups are incremental against the previous one (PostgreSQL 17+, summarize_wal)."""
    full_every: int = DEFAULT_FULL_EVERY
    """At most this many base backups in a chain: a full one, then incremental ones."""


class SizeDrop(StrEnum):
    WARN = "warn"
    FAIL = "fail"
    OFF = "off"


class NotifyOn(StrEnum):
    FAILURE = "failure"
    ALWAYS = "always"


DEFAULT_SIZE_DROP_THRESHOLD = 0.5


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Metrics, notifications and the size check: how operators see the runs."""

    metrics_host: str | None = None
    metrics_port: int = 0
    metrics_textfile: Path | None = None
    metrics_pushgateway: str | None = None
    metrics_token: str | None = field(default=None, repr=False)
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    notify_on: NotifyOn = NotifyOn.FAILURE
    size_drop: SizeDrop = SizeDrop.WARN
    size_drop_threshold: float = DEFAULT_SIZE_DROP_THRESHOLD
    """A backup smaller than this fraction of the median of the previous ones is flagged."""


@dataclass(frozen=True)
class ReplicaConfig:
    """A destination beside the primary that every backup is also stored on."""

    name: str
    """Lower case, as logs, flags, metrics and the page name it."""
    s3: S3Config
    optional: bool = False
    """A failure to store on it is reported without failing the run."""


@dataclass(frozen=True)
class Config:
    postgres: PostgresConfig
    s3: S3Config
    backup: BackupConfig
    logging: LoggingConfig
    encryption: EncryptionConfig = EncryptionConfig()
    schedule: CronSchedule | None = None
    webhooks: WebhookConfig = WebhookConfig()
    wal: WalConfig = WalConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    replicas: tuple[ReplicaConfig, ...] = ()
    warnings: tuple[str, ...] = ()
    cluster: str | None = None
    """The cluster this configuration is of ([cluster.<name>]); None: the one server."""
    clusters: "tuple[Config, ...]" = ()
    """With [cluster.<name>] tables: each cluster's configuration (the top level's PG_*
    settings are then only what the clusters inherit)."""
