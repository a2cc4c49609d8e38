"""Unpacking a base backup into an empty directory, streamed: the object flows from S3
through the decoders into `tar -x` while its SHA-256 is computed, so the download and the
extraction overlap instead of following each other.

Nothing uses the directory before the whole object has been read and its checksum (and
encryption, when configured) checked; on a mismatch the directory is emptied and the restore
fails as if it had been checked first. When the stream itself breaks (S3 goes away
mid-object), the directory is emptied and the caller falls back to download, check, extract.
"""

import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from moonflower.core.errors import MoonflowerError, StorageError
from moonflower.proc.codec import starts_encrypted
from moonflower.proc.feeder import Feeder, StreamBroken, first_bytes
from moonflower.proc.runner import Stage
from moonflower.storage.fetch import damaged, not_encrypted

StagesFor = Callable[[bytes], AbstractContextManager[list[Stage]]]


def empty_directory(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def unpack_streamed(
    chunks: Iterator[bytes],
    key: str,
    sha256: str,
    stages_for: StagesFor,
    extract: Stage,
    directory: Path,
    must_be_encrypted: bool,
) -> None:
    """Raise StreamBroken when the download broke (the directory is then empty again)."""
    try:
        head = first_bytes(chunks)
    except StorageError as error:
        raise StreamBroken(str(error)) from None
    digest = hashlib.sha256()
    feeder = Feeder(chunks, head, digest=digest)
    failure = feeder.feed(stages_for(head), extract)
    found = digest.hexdigest()
    checked = checked_failure(feeder, found, key, sha256, must_be_encrypted) or failure
    if checked is not None:
        empty_directory(directory)
        raise checked


def checked_failure(
    feeder: Feeder, found: str, key: str, sha256: str, must_be_encrypted: bool
) -> MoonflowerError | None:
    """What is wrong with what was read, in the order a spooled restore reports it."""
    if feeder.error is not None:
        return StreamBroken(str(feeder.error))
    if found != sha256:
        return damaged(key)
    if must_be_encrypted and not starts_encrypted(feeder.head):
        return not_encrypted(key)
    return None
