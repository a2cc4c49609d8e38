"""What the bucket holds for point-in-time recovery: base backups (from their backup.json)
and the WAL archive, and the window each timeline can be recovered to."""

from dataclasses import dataclass
from typing import Any

import pendulum

from moonflower.actions.basebackup_record import BaseBackupRecord
from moonflower.errors import MoonflowerError
from moonflower.output.logs import log
from moonflower.postgres.wal_names import Segment, is_history, parse_lsn, segment_for, segment_of
from moonflower.s3.gateway import Storage
from moonflower.s3.physical_keys import (
    BASE_DESCRIPTION,
    WalObject,
    base_label,
    base_prefix,
    parse_wal_key,
    wal_prefix,
)

DESCRIPTION_LIMIT = 64 * 1024


def base_backups(storage: Storage, prefix: str) -> list[BaseBackupRecord]:
    """Every described base backup, oldest first; one whose description is unreadable or
    names another object is left out with a warning."""
    found = []
    for item in storage.list_objects(base_prefix(prefix), deep=True):
        label = base_label(item.key, prefix)
        if label is None or not item.key.endswith("/" + BASE_DESCRIPTION):
            continue
        try:
            record = BaseBackupRecord.from_json(storage.read_small(item.key, DESCRIPTION_LIMIT))
        except (MoonflowerError, ValueError, KeyError, TypeError) as error:
            log.warning("ignoring the base backup %s: unreadable description (%s)", label, error)
            continue
        if record.label != label or base_label(record.key, prefix) != label:
            log.warning("ignoring the base backup %s: its description names another", label)
            continue
        found.append(record)
    return sorted(found, key=lambda record: record.label)


@dataclass(frozen=True)
class WalStored:
    item: WalObject
    last_modified: pendulum.DateTime
    size: int


def wal_archive(storage: Storage, prefix: str) -> list[WalStored]:
    found = []
    for item in storage.list_objects(wal_prefix(prefix)):
        parsed = parse_wal_key(item.key, prefix)
        if parsed is not None:
            found.append(WalStored(parsed, item.last_modified, item.size))
    return found


@dataclass(frozen=True)
class Window:
    """From a base backup's end to the newest WAL that follows it without a gap."""

    timeline: int
    """The timeline the chain ends on (a failover moves it to a newer one)."""
    start: pendulum.DateTime
    end: pendulum.DateTime
    gap_after: str | None = None
    """The first missing segment, when the chain breaks before the newest archived one."""
    chain: tuple[str, ...] = ()
    """The segments a recovery reads, in order, after the base backup's own WAL."""
    histories: tuple[str, ...] = ()
    """The history files of the timelines after the base backup's."""


def recoverable_window(base: BaseBackupRecord, wal: list[WalStored]) -> Window:
    """How far WAL reaches from `base`. At each segment the newest timeline that has it is
    followed, as recovery to the latest timeline does after a failover (the segment of the
    switch exists on both timelines). The end is when the newest segment of the unbroken
    chain was archived: commits up to about then can be recovered."""
    size = base.segment_size
    by_timeline: dict[int, dict[int, WalStored]] = {}
    histories = []
    for stored in wal:
        if is_history(stored.item.name):
            if int(stored.item.name[:8], 16) > base.timeline:
                histories.append(stored.item.name)
            continue
        segment = segment_of(stored.item.name, size)
        if segment is None or segment.timeline < base.timeline:
            continue
        numbers = by_timeline.setdefault(segment.timeline, {})
        known = numbers.get(segment.number)
        if known is None or (known.item.partial and not stored.item.partial):
            numbers[segment.number] = stored
    # The tar holds the WAL up to the stop point; going further starts with the stop segment.
    first = segment_for(base.timeline, parse_lsn(base.stop_lsn), size)
    number, timeline, end = first.number, base.timeline, base.stopped
    chain = []
    while True:
        holding = [
            tli for tli, numbers in by_timeline.items() if tli >= timeline and number in numbers
        ]
        if not holding:
            break
        timeline = max(holding)
        stored = by_timeline[timeline][number]
        end = max(end, stored.last_modified)
        chain.append(stored.item.name)
        number += 1
    newer = any(n > number for numbers in by_timeline.values() for n in numbers)
    gap = Segment(timeline, number, size).name if newer else None
    return Window(timeline, base.stopped, end, gap, tuple(chain), tuple(sorted(histories)))


def base_backup_listing(storage: Storage, prefix: str) -> list[dict[str, Any]]:
    """Each base backup, newest first, with the window it can recover to (for `list`)."""
    wal = wal_archive(storage, prefix)
    listing = []
    for base in reversed(base_backups(storage, prefix)):
        window = recoverable_window(base, wal)
        listing.append(
            {
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
                "incremental_on": base.parent,
                "chain_length": base.chain_length,
            }
        )
    return listing
