"""Records of a base backup and of archived WAL, as the catalog makes them, for the pure
recovery-window logic."""

import pendulum

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical_keys import WalObject, WalStored

STOPPED = pendulum.datetime(2026, 11, 26, 1, 0, 0, tz="UTC")


def base(stop_lsn: str = "0/2000120", timeline: int = 1) -> BaseBackupRecord:
    return BaseBackupRecord(
        label="2026-11-26T01:00:00.000Z",
        key="p/base/2026-11-26T01:00:00.000Z/base.tar.zst",
        start_lsn="0/2000028",
        stop_lsn=stop_lsn,
        timeline=timeline,
        start_time=STOPPED.isoformat(),
        stop_time=STOPPED.isoformat(),
        server_version="18.1",
        server_major=18,
        segment_size=16 * 1024 * 1024,
        size=1,
        sha256="0" * 64,
        compression="zstd",
        encrypted=False,
    )


def stored(name: str, minutes: int, partial: bool = False) -> WalStored:
    moment = STOPPED.add(minutes=minutes)
    item = WalObject(f"p/wal/{name}", name, ".zst", moment if partial else None)
    return WalStored(item, moment, 1)
