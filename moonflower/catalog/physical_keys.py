"""Key naming for physical backups, beside the logical ones under S3_PATH:

<S3_PATH>/wal/<segment or history file><.gz|.zst><.gpg>
<S3_PATH>/wal/<segment>.partial.<UTC time>Z<.gz|.zst><.gpg>   the segment being written
<S3_PATH>/base/<UTC time>Z/base.tar<.gz|.zst><.gpg>          one base backup
<S3_PATH>/base/<UTC time>Z/backup.json                       what it is and needs
"""

import re
from dataclasses import dataclass

import pendulum

from moonflower.catalog.keys import listing_prefix, timestamp
from moonflower.postgres.wal_names import PARTIAL_SUFFIX, is_wal_file

PARTIAL_KEY = re.compile(
    r"(?P<name>[0-9A-F]{24})\.partial\.(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"
)
WAL_KEY = re.compile(r"(?P<name>[0-9A-F]{24}|[0-9A-F]{8}\.history)")
ENCODING = re.compile(r"(\.gz|\.zst)?(\.gpg)?")
BASE_FOLDER = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BASE_OBJECT = "base.tar"
BASE_DESCRIPTION = "backup.json"


def wal_prefix(prefix: str) -> str:
    return f"{listing_prefix(prefix)}wal/"


def base_prefix(prefix: str) -> str:
    return f"{listing_prefix(prefix)}base/"


def wal_key(prefix: str, name: str, suffix: str) -> str:
    """The key of a complete segment or history file."""
    if not is_wal_file(name) or name.endswith(PARTIAL_SUFFIX):
        raise ValueError(f"not a WAL file name: {name}")
    return f"{wal_prefix(prefix)}{name}{suffix}"


def partial_key(prefix: str, segment: str, moment: pendulum.DateTime, suffix: str) -> str:
    return f"{wal_prefix(prefix)}{segment}{PARTIAL_SUFFIX}.{timestamp(moment)}{suffix}"


@dataclass(frozen=True)
class WalObject:
    key: str
    name: str
    """The segment or history file name, without `.partial` and encoding."""
    suffix: str
    partial_time: pendulum.DateTime | None = None
    """For a partial segment: when it was pushed (the newest push wins)."""

    @property
    def partial(self) -> bool:
        return self.partial_time is not None


@dataclass(frozen=True)
class WalStored:
    item: WalObject
    last_modified: pendulum.DateTime
    size: int


def parse_wal_key(key: str, prefix: str) -> WalObject | None:
    start = wal_prefix(prefix)
    if not key.startswith(start):
        return None
    rest = key[len(start) :]
    for pattern in (PARTIAL_KEY, WAL_KEY):
        match = pattern.match(rest)
        if match is None or not ENCODING.fullmatch(rest[match.end() :]):
            continue
        moment = None
        if "time" in match.groupdict():
            parsed = pendulum.parse(match["time"], tz="UTC")
            if not isinstance(parsed, pendulum.DateTime):
                return None
            moment = parsed
        return WalObject(key, match["name"], rest[match.end() :], moment)
    return None


def base_folder(prefix: str, moment: pendulum.DateTime) -> str:
    return f"{base_prefix(prefix)}{timestamp(moment)}/"


def base_label(key: str, prefix: str) -> str | None:
    """The folder name (its UTC time) of a base backup's key, if the key is one of ours."""
    start = base_prefix(prefix)
    if not key.startswith(start):
        return None
    folder, _, name = key[len(start) :].partition("/")
    if not BASE_FOLDER.fullmatch(folder):
        return None
    if name != BASE_DESCRIPTION and not (
        name.startswith(BASE_OBJECT) and ENCODING.fullmatch(name[len(BASE_OBJECT) :])
    ):
        return None
    return folder
