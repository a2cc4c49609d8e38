"""The catalogue of settings: environment names, TOML places, which ones are secret.

The environment names are the old Moonflower image's contract; keep them stable.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    env: str
    section: str
    key: str
    secret: bool = False
    """Masked wherever text leaves the process; implies a `*_FILE` twin."""
    file_twin: bool = False
    """Can also be read from the file named by `<ENV>_FILE` / `<key>_file`."""

    @property
    def has_file_twin(self) -> bool:
        return self.secret or self.file_twin

    @property
    def env_file(self) -> str:
        return f"{self.env}_FILE"

    @property
    def key_file(self) -> str:
        return f"{self.key}_file"

    @property
    def toml_name(self) -> str:
        return f"[{self.section}] {self.key}"


PG_DATABASES = Setting("PG_DATABASES", "postgres", "databases")
PG_HOST = Setting("PG_HOST", "postgres", "host")
PG_PORT = Setting("PG_PORT", "postgres", "port")
PG_USER = Setting("PG_USER", "postgres", "user")
PG_PASSWORD = Setting("PG_PASSWORD", "postgres", "password", secret=True)
PG_DUMP_PATH = Setting("PG_DUMP_PATH", "postgres", "pg_dump_path")
PG_EXCLUDE_DATABASES = Setting("PG_EXCLUDE_DATABASES", "postgres", "exclude_databases")
PG_GLOBALS = Setting("PG_GLOBALS", "postgres", "globals")
PG_LOCK_WAIT_TIMEOUT = Setting("PG_LOCK_WAIT_TIMEOUT", "postgres", "lock_wait_timeout")

S3_ENDPOINT = Setting("S3_ENDPOINT", "s3", "endpoint")
S3_REGION = Setting("S3_REGION", "s3", "region")
S3_BUCKET = Setting("S3_BUCKET", "s3", "bucket")
S3_PATH = Setting("S3_PATH", "s3", "path")
S3_ACCESS_KEY = Setting("S3_ACCESS_KEY", "s3", "access_key")
S3_SECRET_KEY = Setting("S3_SECRET_KEY", "s3", "secret_key", secret=True)
S3_CHECKSUM = Setting("S3_CHECKSUM", "s3", "checksum")
S3_MAX_ATTEMPTS = Setting("S3_MAX_ATTEMPTS", "s3", "max_attempts")
S3_GOVERNANCE = Setting("S3_GOVERNANCE", "s3", "governance")
S3_EXPIRES_IN = Setting("S3_EXPIRES_IN", "s3", "expires_in")

BACKUP_SPOOL_DIR = Setting("BACKUP_SPOOL_DIR", "backup", "spool_dir")

ENCRYPTION_PASSPHRASE = Setting("ENCRYPTION_PASSPHRASE", "encryption", "passphrase", secret=True)
ENCRYPTION_PRIVATE_KEY = Setting("ENCRYPTION_PRIVATE_KEY", "encryption", "private_key", secret=True)
ENCRYPTION_PRIVATE_KEY_PASSPHRASE = Setting(
    "ENCRYPTION_PRIVATE_KEY_PASSPHRASE", "encryption", "private_key_passphrase", secret=True
)
ENCRYPTION_PUBLIC_KEY = Setting("ENCRYPTION_PUBLIC_KEY", "encryption", "public_key", file_twin=True)

WEBHOOK_START = Setting("WEBHOOK_START", "webhooks", "start", file_twin=True)
WEBHOOK_SUCCESS = Setting("WEBHOOK_SUCCESS", "webhooks", "success", file_twin=True)
WEBHOOK_FAILURE = Setting("WEBHOOK_FAILURE", "webhooks", "failure", file_twin=True)
WEBHOOK_POST_LOGS = Setting("WEBHOOK_POST_LOGS", "webhooks", "post_logs")
WEBHOOK_TIMEOUT = Setting("WEBHOOK_TIMEOUT", "webhooks", "timeout")

SCHEDULE = Setting("SCHEDULE", "schedule", "cron")
BACKUP_ON_START = Setting("BACKUP_ON_START", "backup", "on_start")
BACKUP_COMPRESSION = Setting("BACKUP_COMPRESSION", "backup", "compression")
BACKUP_COMPRESSION_LEVEL = Setting("BACKUP_COMPRESSION_LEVEL", "backup", "compression_level")
BACKUP_JOBS = Setting("BACKUP_JOBS", "backup", "jobs")
BACKUP_STATE_DIR = Setting("BACKUP_STATE_DIR", "backup", "state_dir")
BACKUP_FORMAT = Setting("BACKUP_FORMAT", "backup", "format")
BACKUP_TIMEOUT = Setting("BACKUP_TIMEOUT", "backup", "timeout")

LOG_FORMAT = Setting("LOG_FORMAT", "logging", "format")
LOG_LEVEL = Setting("LOG_LEVEL", "logging", "level")

WAL_STREAM = Setting("WAL_STREAM", "wal", "stream")
PG_REPLICATION_SLOT = Setting("PG_REPLICATION_SLOT", "wal", "replication_slot")
WAL_PUSH_INTERVAL = Setting("WAL_PUSH_INTERVAL", "wal", "push_interval")
WAL_SPOOL_LIMIT = Setting("WAL_SPOOL_LIMIT", "wal", "spool_limit")
BASEBACKUP_SCHEDULE = Setting("BASEBACKUP_SCHEDULE", "wal", "basebackup_schedule")
BASEBACKUP_INCREMENTAL = Setting("BASEBACKUP_INCREMENTAL", "wal", "basebackup_incremental")
BASEBACKUP_FULL_EVERY = Setting("BASEBACKUP_FULL_EVERY", "wal", "basebackup_full_every")

BACKUP_KEEP_LAST = Setting("BACKUP_KEEP_LAST", "retention", "keep_last")
BACKUP_KEEP_HOURLY = Setting("BACKUP_KEEP_HOURLY", "retention", "keep_hourly")
BACKUP_KEEP_DAILY = Setting("BACKUP_KEEP_DAILY", "retention", "keep_daily")
BACKUP_KEEP_WEEKLY = Setting("BACKUP_KEEP_WEEKLY", "retention", "keep_weekly")
BACKUP_KEEP_MONTHLY = Setting("BACKUP_KEEP_MONTHLY", "retention", "keep_monthly")
BACKUP_KEEP_YEARLY = Setting("BACKUP_KEEP_YEARLY", "retention", "keep_yearly")
BACKUP_KEEP_TIMEZONE = Setting("BACKUP_KEEP_TIMEZONE", "retention", "timezone")
BACKUP_PRUNE_MAX_DELETE = Setting("BACKUP_PRUNE_MAX_DELETE", "retention", "prune_max_delete")
METRICS_ADDRESS = Setting("METRICS_ADDRESS", "metrics", "address")
METRICS_TEXTFILE = Setting("METRICS_TEXTFILE", "metrics", "textfile")
METRICS_PUSHGATEWAY = Setting("METRICS_PUSHGATEWAY", "metrics", "pushgateway", file_twin=True)
METRICS_TOKEN = Setting("METRICS_TOKEN", "metrics", "token", secret=True)
NOTIFY_URLS = Setting("NOTIFY_URLS", "notify", "urls", secret=True)
NOTIFY_ON = Setting("NOTIFY_ON", "notify", "on")
BACKUP_SIZE_DROP = Setting("BACKUP_SIZE_DROP", "backup", "size_drop")
BACKUP_SIZE_DROP_THRESHOLD = Setting("BACKUP_SIZE_DROP_THRESHOLD", "backup", "size_drop_threshold")
KEEP_RULE_SETTINGS = (
    BACKUP_KEEP_LAST,
    BACKUP_KEEP_HOURLY,
    BACKUP_KEEP_DAILY,
    BACKUP_KEEP_WEEKLY,
    BACKUP_KEEP_MONTHLY,
    BACKUP_KEEP_YEARLY,
)

ALL_SETTINGS: tuple[Setting, ...] = (
    PG_DATABASES,
    PG_HOST,
    PG_PORT,
    PG_USER,
    PG_PASSWORD,
    PG_DUMP_PATH,
    PG_EXCLUDE_DATABASES,
    PG_GLOBALS,
    PG_LOCK_WAIT_TIMEOUT,
    S3_ENDPOINT,
    S3_REGION,
    S3_BUCKET,
    S3_PATH,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    S3_CHECKSUM,
    S3_MAX_ATTEMPTS,
    S3_GOVERNANCE,
    S3_EXPIRES_IN,
    BACKUP_SPOOL_DIR,
    BACKUP_ON_START,
    BACKUP_COMPRESSION,
    BACKUP_COMPRESSION_LEVEL,
    BACKUP_JOBS,
    BACKUP_STATE_DIR,
    BACKUP_FORMAT,
    BACKUP_TIMEOUT,
    SCHEDULE,
    WEBHOOK_START,
    WEBHOOK_SUCCESS,
    WEBHOOK_FAILURE,
    WEBHOOK_POST_LOGS,
    WEBHOOK_TIMEOUT,
    ENCRYPTION_PASSPHRASE,
    ENCRYPTION_PUBLIC_KEY,
    ENCRYPTION_PRIVATE_KEY,
    ENCRYPTION_PRIVATE_KEY_PASSPHRASE,
    LOG_FORMAT,
    LOG_LEVEL,
    WAL_STREAM,
    PG_REPLICATION_SLOT,
    WAL_PUSH_INTERVAL,
    WAL_SPOOL_LIMIT,
    BASEBACKUP_SCHEDULE,
    BASEBACKUP_INCREMENTAL,
    BASEBACKUP_FULL_EVERY,
    *KEEP_RULE_SETTINGS,
    BACKUP_KEEP_TIMEZONE,
    BACKUP_PRUNE_MAX_DELETE,
    METRICS_ADDRESS,
    METRICS_TEXTFILE,
    METRICS_PUSHGATEWAY,
    METRICS_TOKEN,
    NOTIFY_URLS,
    NOTIFY_ON,
    BACKUP_SIZE_DROP,
    BACKUP_SIZE_DROP_THRESHOLD,
)

OWNED_PREFIXES = (
    "PG_",
    "S3_",
    "BACKUP_",
    "BASEBACKUP_",
    "ENCRYPTION_",
    "WEBHOOK_",
    "LOG_",
    "WAL_",
    "METRICS_",
    "NOTIFY_",
    "MOONFLOWER_",
)
"""An environment variable starting with one of these is Moonflower's: an unknown one is a typo."""
FOREIGN_NAMES = frozenset(
    {"PG_MAJOR", "PG_VERSION", "PG_SHA256", "PG_CLIENT_VERSION", "PG_GRANDPARENT_PID"}
)
"""Set in the same environments by others: the official postgres image (PG_MAJOR,
PG_VERSION, PG_SHA256), Moonflower's own image build (PG_CLIENT_VERSION), and PostgreSQL
itself for the archive_command and restore_command it runs (PG_GRANDPARENT_PID)."""
CONFIG_PATH_ENV = "MOONFLOWER_CONFIG"

S3_KEY_ID_LEGACY = "S3_KEY_ID"
"""The old README's quick start named the key id S3_KEY_ID and the secret S3_ACCESS_KEY."""

KNOWN_NAMES = frozenset(
    [setting.env for setting in ALL_SETTINGS]
    + [setting.env_file for setting in ALL_SETTINGS if setting.has_file_twin]
    + [S3_KEY_ID_LEGACY, CONFIG_PATH_ENV]
)
"""Every environment variable Moonflower reads."""
