"""What pruning physical backups touches: the objects of a base backup, and the WAL that no
kept base backup needs (every segment before the start of the oldest one kept). History
files are tiny and kept."""

from moonflower.actions.basebackup_record import BaseBackupRecord
from moonflower.postgres.wal_names import parse_lsn, segment_for, segment_of
from moonflower.s3.gateway import Storage
from moonflower.s3.physical_catalog import wal_archive
from moonflower.s3.physical_keys import base_prefix

BASE_SERIES = "base backups"


def base_keys(storage: Storage, prefix: str, base: BaseBackupRecord) -> list[str]:
    folder = f"{base_prefix(prefix)}{base.label}/"
    return [item.key for item in storage.list_objects(folder)]


def unneeded_wal(storage: Storage, prefix: str, kept: list[BaseBackupRecord]) -> list[str]:
    """WAL objects older than the start of the oldest kept base backup. Without any base
    backup nothing says from where WAL is needed, so none is unneeded."""
    if not kept:
        return []
    oldest = min(kept, key=lambda base: parse_lsn(base.start_lsn))
    first_needed = segment_for(oldest.timeline, parse_lsn(oldest.start_lsn), oldest.segment_size)
    found = []
    for stored in wal_archive(storage, prefix):
        segment = segment_of(stored.item.name, oldest.segment_size)
        if segment is not None and segment.number < first_needed.number:
            found.append(stored.item.key)
    return found
