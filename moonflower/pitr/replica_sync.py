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
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.pitr.basebackup import TAR_TYPE, write_description
from moonflower.pitr.incremental import MANIFEST_TYPE
from moonflower.pitr.wal_archive import CONTENT_SHA256, CONTENT_TYPE, SYSTEM_IDENTIFIER
from moonflower.storage.destination import Destination
from moonflower.storage.fetch import Expected, fetch_checked
from moonflower.storage.objects import SHA256_METADATA_KEY
from moonflower.storage.replication import Copy, store_file

SHA256_TEXT = re.compile(r"[0-9a-f]{64}")
Wal = dict[str, str]
"""A destination's completed WAL files: name to key."""


@dataclasses.dataclass
class Holdings:
    """What one destination holds for point-in-time recovery."""

    bases: dict[str, BaseBackupRecord]
    wal: Wal


def holdings(destination: Destination) -> Holdings:
    storage = destination.checked()
    bases = {record.label: record for record in base_backups(storage, destination.prefix)}
    wal = {
        stored.item.name: stored.item.key
        for stored in wal_archive(storage, destination.prefix)
        if not stored.item.partial
    }
    return Holdings(bases, wal)


def moved(key: str, source: Destination, target: Destination) -> str:
    """The same object's key below the target's S3_PATH."""
    return listing_prefix(target.prefix) + key[len(listing_prefix(source.prefix)) :]


def sync_physical(
    config: Config, destinations: list[Destination], targets: list[Destination], dry_run: bool
) -> list[Copy]:
    held: dict[str, Holdings] = {}
    copies = []
    for destination in destinations:
        try:
            held[destination.name] = holdings(destination)
        except MoonflowerError as error:
            log.error("%s cannot be listed: %s", destination.name, error)
            copies.append(Copy(destination.name, "-", f"failed: cannot be listed: {error}"))
    for target in targets:
        have = held.get(target.name)
        if have is None:
            continue
        others = [d for d in destinations if d is not target and d.name in held]
        labels = sorted({label for d in others for label in held[d.name].bases} - set(have.bases))
        for label in labels:
            sources = [d for d in others if label in held[d.name].bases]
            record = held[sources[0].name].bases[label]
            key = moved(record.key, sources[0], target)
            if dry_run:
                copies.append(Copy(target.name, key, f"would copy from {sources[0].name}"))
                continue
            result = copy_base(config, [(d, held[d.name].bases[label]) for d in sources], target)
            copies.append(Copy(target.name, key, result))
        names = sorted({name for d in others for name in held[d.name].wal} - set(have.wal))
        for name in names:
            sources = [d for d in others if name in held[d.name].wal]
            key = moved(held[sources[0].name].wal[name], sources[0], target)
            if dry_run:
                copies.append(Copy(target.name, key, f"would copy from {sources[0].name}"))
                continue
            pairs = [(d, held[d.name].wal[name]) for d in sources]
            copies.append(Copy(target.name, key, copy_wal(config, pairs, target)))
    return copies


def copy_base(
    config: Config, sources: list[tuple[Destination, BaseBackupRecord]], target: Destination
) -> str:
    """One base backup from the first source whose copy passes its checks."""
    reasons = []
    spool, state_dir = config.backup.spool_dir, state_directory(config.backup)
    for source, record in sources:
        try:
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
        except MoonflowerError as error:
            log.warning(
                "copying base backup %s from %s failed: %s", record.label, source.name, error
            )
            reasons.append(f"{source.name}: {error}")
            continue
        log.info("copied base backup %s from %s to %s", record.label, source.name, target.name)
        return f"copied from {source.name}"
    return "failed: " + "; ".join(reasons)


def copy_wal(config: Config, sources: list[tuple[Destination, str]], target: Destination) -> str:
    """One completed WAL file, with what its object records of its content."""
    reasons = []
    for source, key in sources:
        try:
            storage = source.storage()
            recorded = (storage.head(key) or {}).get("Metadata", {})
            metadata = wal_metadata(recorded, key)
            expected = Expected(
                sha256=recorded.get(SHA256_METADATA_KEY), encrypted=config.encryption.enabled
            )
            if not expected.checkable:
                raise MoonflowerError(f"{key} has no recorded SHA-256 (not written by Moonflower)")
            with fetch_checked(storage, key, config.backup.spool_dir, ".wal", expected) as path:
                target.checked().upload(path, moved(key, source, target), CONTENT_TYPE, metadata)
        except MoonflowerError as error:
            log.warning("copying %s from %s failed: %s", key, source.name, error)
            reasons.append(f"{source.name}: {error}")
            continue
        return f"copied from {source.name}"
    return "failed: " + "; ".join(reasons)


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
