"""The `[wal]` settings: WAL streaming and base backups (point-in-time recovery)."""

import re
from typing import TYPE_CHECKING

from moonflower.config import settings as s
from moonflower.config.model import (
    DEFAULT_FULL_EVERY,
    DEFAULT_REPLICATION_SLOT,
    DEFAULT_WAL_PUSH_SECONDS,
    DEFAULT_WAL_SPOOL_LIMIT,
    WalConfig,
)
from moonflower.config.sources import RawValue
from moonflower.config.values import (
    ascii_number,
    boolean,
    cron_schedule,
    period,
    text,
    whole_number,
)

if TYPE_CHECKING:
    from moonflower.config.loader import Validator

SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")
"""PostgreSQL's rule for replication slot names."""
MIN_PUSH_SECONDS = 1.0
MAX_PUSH_SECONDS = 3600.0
SIZE = re.compile(r"([0-9]+)\s*([kmgt]i?b?|b)?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MAX_CHAIN = 100
"""A restore combines every backup of a chain: longer chains are slow and fragile."""
MIN_SPOOL_LIMIT = 64 * 1024**2
"""A few segments: less than this could not even hold the segment being written."""


def slot_name(raw: RawValue) -> str:
    value = text(raw)
    if not SLOT_NAME.fullmatch(value):
        raise ValueError(
            f'"{value}" is not a replication slot name: lower-case letters, digits and "_", '
            "at most 63 characters"
        )
    return value


def push_interval(raw: RawValue) -> float:
    """Seconds, as a number ("5") or a duration ("5 seconds", "1 minute")."""
    if isinstance(raw.value, int | float) and not isinstance(raw.value, bool):
        seconds = float(raw.value)
    elif isinstance(raw.value, str) and ascii_number(raw.value.strip()):
        seconds = float(raw.value.strip())
    else:
        seconds = period(raw).seconds
    if not MIN_PUSH_SECONDS <= seconds <= MAX_PUSH_SECONDS:
        raise ValueError(f'expected 1 second to 1 hour, got "{raw.value}"')
    return seconds


def byte_size(raw: RawValue) -> int:
    """Bytes, with an optional binary unit: "10 GiB", "512M", "1073741824"."""
    value = str(raw.value).strip() if isinstance(raw.value, int | str) else ""
    match = SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f'expected a size such as "10 GiB" or "512 MiB", got "{raw.value}"')
    size = int(match.group(1)) * SIZE_UNITS[(match.group(2) or "")[:1].lower()]
    if size < MIN_SPOOL_LIMIT:
        raise ValueError(f'"{raw.value}" is too small: at least 64 MiB')
    return size


def wal_config(validator: "Validator") -> WalConfig:
    return WalConfig(
        stream=validator.optional(s.WAL_STREAM, boolean, False),
        slot=validator.optional(s.PG_REPLICATION_SLOT, slot_name, DEFAULT_REPLICATION_SLOT),
        push_interval=validator.optional(
            s.WAL_PUSH_INTERVAL, push_interval, DEFAULT_WAL_PUSH_SECONDS
        ),
        spool_limit=validator.optional(s.WAL_SPOOL_LIMIT, byte_size, DEFAULT_WAL_SPOOL_LIMIT),
        basebackup_schedule=validator.optional(s.BASEBACKUP_SCHEDULE, cron_schedule, None),
        incremental=validator.optional(s.BASEBACKUP_INCREMENTAL, boolean, False),
        full_every=validator.optional(
            s.BASEBACKUP_FULL_EVERY, whole_number(1, MAX_CHAIN), DEFAULT_FULL_EVERY
        ),
    )
