"""`moonflower sync` for point-in-time recovery: the base backups (tar, manifest, then the
description naming the target's keys, last, so a copy cut short is never listed) and the
completed WAL files a destination lacks, each downloaded from a destination that has it,
checked against the SHA-256 recorded when it was stored, and stored create-only. Partial
segments are not copied: the next completed segment supersedes them."""

import dataclasses
import re

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.keys import listing_prefix
from moonflower.catalog.physical import base_backups, wal_archive
from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.state_dir import state_directory
from moonflower.pitr.basebackup import TAR_TYPE, write_description
from moonflower.pitr.incremental import MANIFEST_TYPE
from moonflower.pitr.wal_archive import CONTENT_SHA256, CONTENT_TYPE, SYSTEM_IDENTIFIER
from moonflower.storage.catch_up import Copy, catch_up
from moonflower.storage.destination import Destination
from moonflower.storage.fetch import Expected, fetch_checked
from moonflower.storage.objects import SHA256_METADATA_KEY
from moonflower.storage.replication import store_file

SHA256_TEXT = re.compile(r"[0-9a-f]{64}")


def described_bases(destination: Destination) -> dict[str, BaseBackupRecord]:
    storage = destination.checked()
    return {record.label: record for record in base_backups(storage, destination.prefix)}


def completed_wal(destination: Destination) -> dict[str, str]:
    """Completed segments and history files: name to key."""
    stored = wal_archive(destination.checked(), destination.prefix)
    return {found.item.name: found.item.key for found in stored if not found.item.partial}


def moved(key: str, source: Destination, target: Destination) -> str:
    """The same object's key below the target's S3_PATH."""
    return listing_prefix(target.prefix) + key[len(listing_prefix(source.prefix)) :]


def sync_physical(
    config: Config, destinations: list[Destination], targets: list[Destination], dry_run: bool
) -> list[Copy]:
    """Base backups first (a WAL copy is of no use without one to start from), then WAL."""

    def base_there(
        _: str, source: Destination, record: BaseBackupRecord, target: Destination
    ) -> str:
        return moved(record.key, source, target)

    def wal_there(_: str, source: Destination, key: str, target: Destination) -> str:
        return moved(key, source, target)

    def copy_base_to(
        source: Destination, record: BaseBackupRecord, target: Destination, _: str
    ) -> None:
        copy_base(config, source, record, target)

    def copy_wal_to(source: Destination, key: str, target: Destination, there: str) -> None:
        copy_wal(config, source, key, target, there)

    bases = catch_up(destinations, targets, described_bases, base_there, copy_base_to, dry_run)
    wal = catch_up(destinations, targets, completed_wal, wal_there, copy_wal_to, dry_run)
    unlisted = {copy.target for copy in bases if copy.key == "-"}
    return bases + [copy for copy in wal if not (copy.key == "-" and copy.target in unlisted)]


def copy_base(
    config: Config, source: Destination, record: BaseBackupRecord, target: Destination
) -> None:
    """The tar, the manifest, then the description naming the target's keys."""
    spool, state_dir = config.backup.spool_dir, state_directory(config.backup)
    parts = [(record.key, record.sha256, TAR_TYPE)]
    if record.manifest_key is not None:
        parts.append((record.manifest_key, record.manifest_sha256 or "", MANIFEST_TYPE))
    for key, sha256, content_type in parts:
        expected = Expected(sha256=sha256 or None, encrypted=record.encrypted)
        if not expected.checkable:
            raise MoonflowerError(f"{key} has no recorded SHA-256")
        with fetch_checked(source.storage(), key, spool, ".copy", expected) as path:
            store_file(state_dir, target, moved(key, source, target), path, content_type)
    relocated = dataclasses.replace(
        record,
        key=moved(record.key, source, target),
        manifest_key=record.manifest_key and moved(record.manifest_key, source, target),
    )
    write_description(target.checked(), config, relocated)


def copy_wal(
    config: Config, source: Destination, key: str, target: Destination, there: str
) -> None:
    """One completed WAL file, with what its object records of its content."""
    storage = source.storage()
    recorded = (storage.head(key) or {}).get("Metadata", {})
    metadata = wal_metadata(recorded, key)
    expected = Expected(
        sha256=recorded.get(SHA256_METADATA_KEY), encrypted=config.encryption.enabled
    )
    if not expected.checkable:
        raise MoonflowerError(f"{key} has no recorded SHA-256 (not written by Moonflower)")
    with fetch_checked(storage, key, config.backup.spool_dir, ".wal", expected) as path:
        target.checked().upload(path, there, CONTENT_TYPE, metadata)


def wal_metadata(recorded: dict[str, str], key: str) -> dict[str, str]:
    """What a WAL object records of its raw content, checked for form before it is copied."""
    digest = recorded.get(CONTENT_SHA256, "")
    if not SHA256_TEXT.fullmatch(digest):
        raise MoonflowerError(f"{key} records no content SHA-256 (not written by Moonflower)")
    metadata = {CONTENT_SHA256: digest}
    system = recorded.get(SYSTEM_IDENTIFIER)
    if system is not None and system.isascii() and system.isdigit():
        metadata[SYSTEM_IDENTIFIER] = system
    return metadata
