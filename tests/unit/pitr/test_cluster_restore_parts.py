"""Pieces of restore-cluster: the combine area, the target checks, the status page's window
(issue 27, items 8, 9 and 14)."""

from pathlib import Path

import pendulum
import pytest

from moonflower.core.errors import RestoreError
from moonflower.core.ownership import lease
from moonflower.pitr.base_chain import combine_area
from moonflower.pitr.listing import ListedBase
from moonflower.pitr.recovery_run import Reached
from moonflower.pitr.recovery_target import RecoveryTarget, check_reachable, check_reached
from moonflower.pitr.recovery_window import Window, recoverable_window
from moonflower.reporting.page import pitr_window
from tests.support.archive_records import STOPPED, base, stored


def test_two_combine_areas_in_one_spool_never_collide(tmp_path: Path) -> None:
    with combine_area(tmp_path) as first, combine_area(tmp_path) as second:
        assert first != second
        assert first.is_dir()
        assert second.is_dir()
        assert lease.token in first.name
    assert not first.exists()
    assert not second.exists()


WAL = [stored("000000010000000000000002", 1), stored("000000010000000000000003", 2)]


def test_a_target_beyond_the_archive_is_refused_up_front() -> None:
    window = recoverable_window(base(), WAL)
    with pytest.raises(RestoreError, match="out of reach"):
        check_reachable(RecoveryTarget(lsn=0x50000000), base(), window)
    with pytest.raises(RestoreError, match="out of reach"):
        check_reachable(RecoveryTarget(time=STOPPED.add(hours=1)), base(), window)
    check_reachable(RecoveryTarget(lsn=0x3000100), base(), window)
    gap = recoverable_window(base(), [*WAL[:1], stored("000000010000000000000004", 3)])
    with pytest.raises(RestoreError, match="--latest cannot reach"):
        check_reachable(RecoveryTarget(), base(), gap)


def test_a_recovery_short_of_the_newest_wal_fails() -> None:
    window = recoverable_window(base(), WAL)
    short = Reached(last_transaction=None, redo_lsn="0/2000120", timeline=2, stop_reason=None)
    with pytest.raises(RestoreError, match="short of the newest archived WAL"):
        check_reached(RecoveryTarget(), base(), window, short)
    whole = Reached(last_transaction=None, redo_lsn="0/3000400", timeline=2, stop_reason=None)
    check_reached(RecoveryTarget(), base(), window, whole)
    with pytest.raises(RestoreError, match="without reaching"):
        check_reached(RecoveryTarget(lsn=0x3000500), base(), window, short)


def test_the_pitr_window_spans_every_base_backup_in_any_order() -> None:
    def listed(start: str, end: str) -> ListedBase:
        reach = Window(1, pendulum.parse(start), pendulum.parse(end))  # type: ignore[arg-type]
        return ListedBase(base(), reach)

    newest_first = [
        listed("2026-11-27T01:00:00+00:00", "2026-11-27T09:00:00+00:00"),
        listed("2026-11-26T01:00:00+00:00", "2026-11-27T09:00:00+00:00"),
    ]
    window = pitr_window(newest_first)
    assert window == "from 2026-11-26 01:00:00 UTC to 2026-11-27 09:00:00 UTC"
    assert pitr_window(list(reversed(newest_first))) == window
    assert pitr_window([]) is None
