"""What pruning physical backups touches: the objects of a base backup, and the WAL that no
kept base backup needs (every segment before the start of the oldest one kept). History
files are tiny and kept."""

from dataclasses import dataclass

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical import wal_archive
from moonflower.catalog.physical_keys import base_prefix
from moonflower.postgres.wal_names import parse_lsn, segment_for, segment_of
from moonflower.storage.gateway import Storage

BASE_SERIES = "base backups"
WAL_SERIES = "the WAL archive"


def base_keys(storage: Storage, prefix: str, base: BaseBackupRecord) -> list[str]:
    folder = f"{base_prefix(prefix)}{base.label}/"
    return [item.key for item in storage.list_objects(folder)]


@dataclass(frozen=True)
class UnneededWal:
    keys: list[str]
    total: int
    """WAL objects in the archive."""
    anchored: bool
    """The first segment the oldest kept base backup needs is in the archive: its claimed
    start is borne out by the archive itself."""


def unneeded_wal(storage: Storage, prefix: str, kept: list[BaseBackupRecord]) -> UnneededWal:
    """WAL objects older than the start of the oldest kept base backup. Without any base
    backup nothing says from where WAL is needed, so none is unneeded."""
    stored = wal_archive(storage, prefix)
    if not kept:
        return UnneededWal([], len(stored), True)
    oldest = min(kept, key=lambda base: parse_lsn(base.start_lsn))
    first_needed = segment_for(oldest.timeline, parse_lsn(oldest.start_lsn), oldest.segment_size)
    found, anchored = [], False
    for item in stored:
        segment = segment_of(item.item.name, oldest.segment_size)
        if segment is None:
            continue
        if segment.number < first_needed.number:
            found.append(item.item.key)
        elif segment.number == first_needed.number:
            anchored = True
    return UnneededWal(found, len(stored), anchored)


def wal_refusal(wal: UnneededWal, max_percent: int) -> str | None:
    """Deleting more than BACKUP_PRUNE_MAX_DELETE percent of the WAL at once is refused
    unless the archive itself holds the start of the oldest kept base backup."""
    if wal.anchored or not wal.keys or len(wal.keys) * 100 <= wal.total * max_percent:
        return None
    return (
        f"BACKUP_PRUNE_MAX_DELETE: pruning would delete {len(wal.keys)} of the {wal.total} "
        "WAL files, and the archive does not hold the first segment the oldest kept base "
        "backup needs (a description not borne out by the WAL?); no WAL was deleted. Run "
        "`moonflower prune --yes` to delete it anyway"
    )
