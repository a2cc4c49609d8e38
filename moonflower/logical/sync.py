"""`moonflower sync`: copy to a destination the logical backups it lacks (after an outage,
or to seed a new replica). A copy is downloaded from a destination that has it, checked
against the SHA-256 recorded when it was made (another source is tried when it fails), and
stored create-only: nothing is overwritten, and nothing Moonflower did not write (no
recorded checksum) or that fails its checksum is ever copied."""

from pathlib import Path

from moonflower.catalog.keys import listing_prefix
from moonflower.catalog.logical import BackupInfo, Catalog
from moonflower.core.errors import MoonflowerError
from moonflower.logical.plans import CONTENT_TYPES, CUSTOM_EXTENSION
from moonflower.logical.readback import expected_of
from moonflower.proc.codec import stored_compression
from moonflower.storage.catch_up import Copy, catch_up
from moonflower.storage.destination import Destination
from moonflower.storage.fetch import fetch_checked
from moonflower.storage.replication import store_file

Listing = dict[str, BackupInfo]
"""A destination's backups by their name below its S3_PATH."""


def listed(destination: Destination) -> Listing:
    start = len(listing_prefix(destination.prefix))
    backups = Catalog(destination.checked(), destination.config).backups(details=True)
    return {info.key[start:]: info for info in backups}


def sync(
    destinations: list[Destination],
    targets: list[Destination],
    spool_dir: Path,
    state_dir: Path,
    dry_run: bool,
) -> list[Copy]:
    def key_there(name: str, source: Destination, info: BackupInfo, target: Destination) -> str:
        return f"{listing_prefix(target.prefix)}{name}"

    def copy(source: Destination, info: BackupInfo, target: Destination, key: str) -> None:
        copy_one(source, info, target, key, spool_dir, state_dir)

    return catch_up(destinations, targets, listed, key_there, copy, dry_run)


def copy_one(
    source: Destination,
    info: BackupInfo,
    target: Destination,
    key: str,
    spool_dir: Path,
    state_dir: Path,
) -> None:
    """One backup, checked against the SHA-256 recorded when it was made."""
    expected = expected_of(info)
    if not expected.checkable:
        raise MoonflowerError("no recorded SHA-256 (not written by Moonflower)")
    extension = info.backup.extension
    plain = "custom" if extension.startswith(CUSTOM_EXTENSION) else stored_compression(extension)
    content_type = CONTENT_TYPES["gpg" if info.backup.encrypted else plain]
    with fetch_checked(source.storage(), info.key, spool_dir, extension, expected) as path:
        store_file(state_dir, target, key, path, content_type)
