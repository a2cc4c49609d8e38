"""Each base backup with the window it can recover to, for `list` and the status page."""

from dataclasses import dataclass
from typing import Any

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical import base_backups, wal_archive
from moonflower.pitr.recovery_window import Window, recoverable_window
from moonflower.storage.gateway import Storage


@dataclass(frozen=True)
class ListedBase:
    base: BaseBackupRecord
    window: Window

    def as_json(self) -> dict[str, Any]:
        base, window = self.base, self.window
        return {
            "key": base.key,
            "created": base.start_time,
            "size": base.size,
            "encrypted": base.encrypted,
            "timeline": base.timeline,
            "recoverable_timeline": window.timeline,
            "start_lsn": base.start_lsn,
            "stop_lsn": base.stop_lsn,
            "recoverable_from": window.start.isoformat(),
            "recoverable_to": window.end.isoformat(),
            "gap_at": window.gap_after,
            "forks": list(window.forks),
            "incremental_on": base.parent,
            "chain_length": base.chain_length,
        }


def base_backup_listing(storage: Storage, prefix: str) -> list[ListedBase]:
    """Each base backup, newest first, with the window it can recover to."""
    wal = wal_archive(storage, prefix)
    return [
        ListedBase(base, recoverable_window(base, wal))
        for base in reversed(base_backups(storage, prefix))
    ]
