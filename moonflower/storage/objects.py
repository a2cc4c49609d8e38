"""What the S3 gateway hands back (uploads, listings, deletions), the metadata Moonflower
writes on its objects, and S3's size limits."""

import math
from dataclasses import dataclass

import pendulum

from moonflower.core.errors import Abandoned
from moonflower.core.shutdown import shutdown

MIB = 1024 * 1024
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
S3_MAX_PARTS = 10_000
S3_MIN_PART_SIZE = 5 * MIB
MULTIPART_THRESHOLD = 64 * MIB
DEFAULT_PART_SIZE = 16 * MIB

SHA256_METADATA_KEY = "sha256"
EXPIRES_METADATA_KEY = "expires-at"
PART_SIZE_METADATA_KEY = "part-size"


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    sha256: str
    locked_until: pendulum.DateTime | None = None
    expires: pendulum.DateTime | None = None


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: pendulum.DateTime
    """When S3 received the object (its clock, not ours)."""


@dataclass
class Deletion:
    """What became of one backup's versions."""

    key: str
    deleted: int = 0
    locked_until: pendulum.DateTime | None = None
    error: str | None = None


def stop_if_abandoned(_transferred: int) -> None:
    """Upload progress callback: an abandoned run stops its uploads (multipart is aborted)."""
    if shutdown.abandoned.is_set():
        raise Abandoned()


def part_size_for(size: int) -> int:
    """A part size that keeps any file under S3's 10,000 part limit."""
    needed = math.ceil(size / (S3_MAX_PARTS - 1)) if size else 0
    return max(DEFAULT_PART_SIZE, S3_MIN_PART_SIZE, math.ceil(needed / MIB) * MIB)
