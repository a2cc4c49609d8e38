"""Object key naming: one place for the scheme the old tool established.

`<S3_PATH>/<database>_<UTC time with milliseconds>Z<extension>`, e.g.
`nightly/app_2026-11-26T01:00:00.123Z.sql.gz`.
"""

import re
from dataclasses import dataclass

import pendulum

from moonflower.proc.codec import ENCRYPTED_SUFFIX

KNOWN_EXTENSIONS = (
    ".dump.gpg",
    ".dump",
    ".sql.gz.gpg",
    ".sql.zst.gpg",
    ".sql.gpg",  # also the original image's encrypted backups: gpg's own compression
    ".sql.gz",
    ".sql.zst",
    ".sql",
)
ESCAPES = re.compile(r"%(25|2F|5F)", re.IGNORECASE)
UNESCAPE = {"%25": "%", "%2F": "/", "%5F": "_"}
GLOBALS_NAME = "_globals"
"""Roles and tablespaces of the cluster (pg_dumpall --globals-only), named like a database
no database can be named in keys (database names starting with "_" are escaped)."""
GLOBALS_SHOWN = "(globals: the roles and tablespaces of the cluster, not a database)"
"""How the globals are named to people and in records (the summary, `list`, the status
file, metrics, webhooks): longer than the 63 bytes a database name can have, so no
database, not even one named `_globals`, is ever shown under it."""
TIME_FORMAT = "YYYY-MM-DDTHH:mm:ss.SSS[Z]"
KEY_NAME = re.compile(
    r"(?P<database>.+)_(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"
    r"(?P<extension>" + "|".join(re.escape(ext) for ext in KNOWN_EXTENSIONS) + r")"
)


@dataclass(frozen=True)
class BackupKey:
    key: str
    database: str
    created: pendulum.DateTime
    extension: str
    key_name: str = ""
    """The name as written in the key (encoded); unique per database, and for the globals."""

    @property
    def is_globals(self) -> bool:
        return self.key_name == GLOBALS_NAME

    @property
    def encrypted(self) -> bool:
        return self.extension.endswith(ENCRYPTED_SUFFIX)


def timestamp(moment: pendulum.DateTime) -> str:
    return moment.in_timezone("UTC").format(TIME_FORMAT)


def encode_name(database: str) -> str:
    """Database names may hold "/", which must not make a key climb into sub-folders, and
    a leading "_" is escaped so that no database can take the globals' name."""
    encoded = database.replace("%", "%25").replace("/", "%2F")
    return "%5F" + encoded[1:] if encoded.startswith("_") else encoded


def decode_name(encoded: str) -> str:
    return ESCAPES.sub(lambda match: UNESCAPE[match.group(0).upper()], encoded)


def backup_key(prefix: str, key_name: str, moment: pendulum.DateTime, extension: str) -> str:
    """`key_name` is the encoded database name (encode_name), or GLOBALS_NAME."""
    name = f"{key_name}_{timestamp(moment)}{extension}"
    return f"{prefix}/{name}" if prefix else name


def listing_prefix(prefix: str) -> str:
    return f"{prefix}/" if prefix else ""


def parse_key(key: str, prefix: str) -> BackupKey | None:
    """The backup a key names, if it lies directly under `prefix` and follows our scheme."""
    start = listing_prefix(prefix)
    if not key.startswith(start):
        return None
    name = key[len(start) :]
    if "/" in name:
        return None
    match = KEY_NAME.fullmatch(name)
    if not match:
        return None
    try:
        created = pendulum.parse(match["time"], tz="UTC")
    except ValueError:  # shaped like a time, but no such moment (30 February, hour 25)
        return None
    if not isinstance(created, pendulum.DateTime):
        return None
    encoded = match["database"]
    database = GLOBALS_SHOWN if encoded == GLOBALS_NAME else decode_name(encoded)
    return BackupKey(key, database, created, match["extension"], encoded)
