"""The one checked download, for every kind of backup: an object downloaded to a spool file
and refused unless it matches what was recorded when it was stored (its SHA-256, or S3's
composite SHA-256 of its parts) and, when encryption is configured, is encrypted."""

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moonflower.core.errors import RestoreError
from moonflower.core.logs import log, step
from moonflower.proc.codec import is_encrypted
from moonflower.proc.spool import spool_file
from moonflower.storage.checksums import (
    CompositeSha256,
    file_composite_sha256,
    file_sha256,
    same_composite,
)

if TYPE_CHECKING:
    from moonflower.storage.gateway import Storage


@dataclass(frozen=True)
class Expected:
    """What an object must be, as recorded when it was stored."""

    sha256: str | None = None
    composite: str | None = None
    """S3's composite SHA-256 of an object uploaded in parts of `part_size` bytes."""
    part_size: int | None = None
    encrypted: bool = False
    """Encryption is configured: a plain object may have been planted and is refused."""

    @property
    def checkable(self) -> bool:
        return self.sha256 is not None or bool(self.composite and self.part_size)

    @property
    def shown(self) -> str:
        if self.sha256 is not None:
            return f"SHA-256 {self.sha256[:16]}…"
        return f"composite SHA-256 of {self.part_size}-byte parts"


class RunningCheck:
    """An Expected checksum computed as the bytes pass (an object read while it downloads)."""

    def __init__(self, expected: Expected) -> None:
        assert expected.checkable
        self.expected = expected
        self.digest: hashlib._Hash | CompositeSha256 = (
            hashlib.sha256()
            if expected.sha256 is not None
            else CompositeSha256(expected.part_size or 0)
        )

    def update(self, chunk: bytes) -> None:
        self.digest.update(chunk)

    def matches(self) -> bool:
        if isinstance(self.digest, CompositeSha256):
            return same_composite(self.expected.composite or "", self.digest.value())
        return self.digest.hexdigest() == self.expected.sha256


def damaged(key: str) -> RestoreError:
    return RestoreError(
        "checksum",
        f"{key} does not match the SHA-256 recorded when it was stored; "
        "it is damaged or was changed",
    )


def not_encrypted(key: str) -> RestoreError:
    return RestoreError(
        "checksum",
        f"encryption is configured, but {key} is not encrypted: anyone who can write to the "
        "bucket could have planted it",
    )


def check_stored(path: Path, key: str, expected: Expected) -> None:
    """Refuse a downloaded `path` that is not what `expected` says was stored."""
    if expected.sha256 is not None:
        if file_sha256(path) != expected.sha256:
            raise damaged(key)
    elif expected.composite and expected.part_size:
        if not same_composite(expected.composite, file_composite_sha256(path, expected.part_size)):
            raise damaged(key)
    else:
        raise RestoreError("checksum", f"{key} has no recorded SHA-256 to check it against")
    if expected.encrypted and not is_encrypted(path):
        raise not_encrypted(key)
    log.debug("%s: checksum ok (%s)", key, expected.shown)


@contextlib.contextmanager
def fetch_checked(
    storage: "Storage",
    key: str,
    spool_dir: Path,
    suffix: str,
    expected: Expected | None,
    on_bytes: Callable[[int], None] = lambda _: None,
    timed: Callable[[str], AbstractContextManager[None]] = step,
) -> Iterator[Path]:
    """`key` downloaded to a spool file (removed after the block) and checked; `expected`
    None only where the caller has already accepted an object it cannot check. `timed`
    names (and may time) the two steps."""
    with spool_file(spool_dir, suffix) as path:
        with timed("download"):
            storage.download(key, path, on_bytes)
        if expected is not None:
            with timed("checksum"):
                check_stored(path, key, expected)
        yield path
