"""`moonflower sync`: copy to a destination the logical backups it lacks (after an outage,
or to seed a new replica). A copy is downloaded from a destination that has it, checked
against the SHA-256 recorded when it was made (another source is tried when it fails), and
stored create-only: nothing is overwritten, and nothing Moonflower did not write (no
recorded checksum) or that fails its checksum is ever copied."""

from pathlib import Path

from moonflower.catalog.keys import listing_prefix
from moonflower.catalog.logical import BackupInfo, Catalog
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.logical.plans import CONTENT_TYPES, CUSTOM_EXTENSION
from moonflower.logical.readback import expected_of
from moonflower.proc.codec import stored_compression
from moonflower.storage.destination import Destination
from moonflower.storage.fetch import fetch_checked
from moonflower.storage.replication import Copy, store_file

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
    listings: dict[str, Listing] = {}
    copies = []
    for destination in destinations:
        try:
            listings[destination.name] = listed(destination)
        except MoonflowerError as error:
            log.error("%s cannot be listed: %s", destination.name, error)
            copies.append(Copy(destination.name, "-", f"failed: cannot be listed: {error}"))
    for target in targets:
        have = listings.get(target.name)
        if have is None:
            continue
        wanted: dict[str, list[tuple[Destination, BackupInfo]]] = {}
        for source in destinations:
            for name, info in listings.get(source.name, {}).items():
                if source is not target and name not in have:
                    wanted.setdefault(name, []).append((source, info))
        for name, sources in sorted(wanted.items()):
            key = f"{listing_prefix(target.prefix)}{name}"
            if dry_run:
                copies.append(Copy(target.name, key, f"would copy from {sources[0][0].name}"))
                continue
            result = copy_one(sources, target, key, spool_dir, state_dir)
            copies.append(Copy(target.name, key, result))
    return copies


def copy_one(
    sources: list[tuple[Destination, BackupInfo]],
    target: Destination,
    key: str,
    spool_dir: Path,
    state_dir: Path,
) -> str:
    """Copy one backup from the first source whose copy passes its checks."""
    reasons = []
    for source, info in sources:
        expected = expected_of(info)
        if not expected.checkable:
            reasons.append(f"{source.name}: no recorded SHA-256 (not written by Moonflower)")
            continue
        encrypted = info.backup.encrypted
        extension = info.backup.extension
        plain = (
            "custom" if extension.startswith(CUSTOM_EXTENSION) else stored_compression(extension)
        )
        content_type = CONTENT_TYPES["gpg" if encrypted else plain]
        try:
            with fetch_checked(
                source.storage(), info.key, spool_dir, info.backup.extension, expected
            ) as path:
                store_file(state_dir, target, key, path, content_type)
        except MoonflowerError as error:
            log.warning("copying %s from %s failed: %s", info.key, source.name, error)
            reasons.append(f"{source.name}: {error}")
            continue
        log.info("copied %s from %s to %s as %s", info.key, source.name, target.name, key)
        return f"copied from {source.name}"
    return "failed: " + "; ".join(reasons)
