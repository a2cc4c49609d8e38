"""How far the WAL archive reaches from a base backup: the chain of segments a recovery
reads, which timelines it follows, and where it breaks. Pure: it reads a listing only.

A recovery follows the base backup's own timeline. A newer timeline is followed when the
old one ended where it begins (a failover: the old primary wrote nothing after the new one
appeared). When the old timeline went on after the newer one appeared, the archive holds a
fork — two clusters writing into one S3_PATH, such as a restored copy promoted beside the
production server — and the newer timeline is left alone and reported, unless asked for
(`--timeline N` or `--timeline latest`).

A partial upload of a segment (`.partial`) is only ever the last segment of a timeline:
one with complete segments after it means the complete upload is missing, a gap.
"""

from dataclasses import dataclass

import pendulum

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical_keys import WalStored
from moonflower.postgres.wal_names import Segment, is_history, parse_lsn, segment_for, segment_of

FOLLOW_LATEST = "latest"
Follow = int | str | None
"""None: the base backup's timeline and the failovers that end it; a timeline number; or
FOLLOW_LATEST: the newest timeline, whatever forks the archive holds."""


@dataclass(frozen=True)
class Window:
    """From a base backup's end to the newest WAL that follows it without a gap."""

    timeline: int
    """The timeline the chain ends on (a failover moves it to a newer one)."""
    start: pendulum.DateTime
    end: pendulum.DateTime
    gap_after: str | None = None
    """The first segment missing (or only partially archived) before newer WAL."""
    chain: tuple[str, ...] = ()
    """The segments a recovery reads, in order, after the base backup's own WAL."""
    histories: tuple[str, ...] = ()
    """The history files of the timelines followed after the base backup's."""
    forks: tuple[str, ...] = ()
    """Timelines left alone because the one followed went on after they appeared."""
    end_lsn: int = 0
    """Where the chain's WAL ends at the latest (the end of its last segment)."""
    last_partial: bool = False
    """The chain ends with a partial upload (the segment that was being written)."""


@dataclass(frozen=True)
class Archive:
    segments: dict[int, dict[int, WalStored]]
    """Per timeline, per segment number: the upload a recovery would read."""
    histories: dict[int, WalStored]


def sorted_archive(base: BaseBackupRecord, wal: list[WalStored]) -> Archive:
    segments: dict[int, dict[int, WalStored]] = {}
    histories: dict[int, WalStored] = {}
    for stored in wal:
        name = stored.item.name
        if is_history(name):
            if int(name[:8], 16) > base.timeline:
                histories[int(name[:8], 16)] = stored
            continue
        segment = segment_of(name, base.segment_size)
        if segment is None or segment.timeline < base.timeline:
            continue
        numbers = segments.setdefault(segment.timeline, {})
        known = numbers.get(segment.number)
        if known is None or preferred(stored, known):
            numbers[segment.number] = stored
    return Archive(segments, histories)


def preferred(candidate: WalStored, known: WalStored) -> bool:
    """A complete upload over a partial one; of two partial ones, the newer."""
    if known.item.partial_time is None:
        return False
    if candidate.item.partial_time is None:
        return True
    return candidate.item.partial_time > known.item.partial_time


def appeared(archive: Archive, timeline: int) -> pendulum.DateTime | None:
    """When a timeline first showed in the archive: its history file, else its first WAL."""
    if timeline in archive.histories:
        return archive.histories[timeline].last_modified
    uploads = archive.segments.get(timeline, {}).values()
    return min((stored.last_modified for stored in uploads), default=None)


def went_on(archive: Archive, timeline: int, newer: int) -> bool:
    """Did `timeline` receive WAL from where `newer` begins, after `newer` appeared?"""
    since = appeared(archive, newer)
    start = min(archive.segments.get(newer, {}), default=None)
    if since is None:
        return False
    return any(
        stored.last_modified > since and (start is None or number >= start)
        for number, stored in archive.segments.get(timeline, {}).items()
    )


def followed_timelines(
    base: BaseBackupRecord, archive: Archive, follow: Follow
) -> tuple[set[int], list[str]]:
    """The timelines a recovery may follow, and the forks it leaves alone."""
    newer = sorted(set(archive.segments) | set(archive.histories))
    newer = [timeline for timeline in newer if timeline > base.timeline]
    if follow == FOLLOW_LATEST:
        return {base.timeline, *newer}, []
    if isinstance(follow, int):
        return {base.timeline, *(t for t in newer if t <= follow)}, []
    allowed, current = {base.timeline}, base.timeline
    forks: list[str] = []
    for timeline in newer:
        if forks or went_on(archive, current, timeline):
            forks.append(
                f"timeline {timeline} branches off while timeline {current} went on "
                "(another cluster, or a restored copy, writing into this S3_PATH?)"
            )
            continue
        allowed.add(timeline)
        current = timeline
    return allowed, forks


def recoverable_window(
    base: BaseBackupRecord, wal: list[WalStored], follow: Follow = None
) -> Window:
    """How far WAL reaches from `base`. At each segment the newest followed timeline that
    has it is taken, as recovery does after a failover (the segment of the switch exists on
    both timelines). The end is when the newest segment of the unbroken chain was archived:
    commits up to about then can be recovered."""
    size = base.segment_size
    archive = sorted_archive(base, wal)
    allowed, forks = followed_timelines(base, archive, follow)
    # The tar holds the WAL up to the stop point; going further starts with the stop segment.
    first = segment_for(base.timeline, parse_lsn(base.stop_lsn), size)
    number, timeline, end = first.number, base.timeline, base.stopped
    end_lsn = parse_lsn(base.stop_lsn)
    chain: list[str] = []
    partial: str | None = None
    while partial is None:
        holding = [
            tli for tli in allowed if tli >= timeline and number in archive.segments.get(tli, {})
        ]
        if not holding:
            break
        timeline = max(holding)
        stored = archive.segments[timeline][number]
        end = max(end, stored.last_modified)
        chain.append(stored.item.name)
        if stored.item.partial:
            partial = stored.item.name
        number += 1
        end_lsn = number * size
    beyond = any(
        n >= number for tli in allowed if tli >= timeline for n in archive.segments.get(tli, {})
    )
    gap = None
    if beyond:
        gap = partial or Segment(timeline, number, size).name
    histories = sorted(
        stored.item.name for tli, stored in archive.histories.items() if tli in allowed
    )
    return Window(
        timeline,
        base.stopped,
        end,
        gap,
        tuple(chain),
        tuple(histories),
        tuple(forks),
        end_lsn,
        partial is not None,
    )
