"""How far the WAL archive reaches from a base backup, across a failover's new timeline."""

from moonflower.pitr.recovery_window import recoverable_window
from tests.support.archive_records import STOPPED, base, stored


def test_an_unbroken_chain_on_one_timeline() -> None:
    wal = [stored("000000010000000000000002", 1), stored("000000010000000000000003", 2)]
    window = recoverable_window(base(), wal)
    assert window.chain == ("000000010000000000000002", "000000010000000000000003")
    assert window.end == STOPPED.add(minutes=2)
    assert window.gap_after is None


def test_a_missing_segment_is_a_gap() -> None:
    wal = [stored("000000010000000000000002", 1), stored("000000010000000000000004", 3)]
    window = recoverable_window(base(), wal)
    assert window.chain == ("000000010000000000000002",)
    assert window.gap_after == "000000010000000000000003"
    assert window.end == STOPPED.add(minutes=1)


def test_the_chain_follows_a_failover_to_the_new_timeline() -> None:
    wal = [
        stored("000000010000000000000002", 1),
        stored("000000010000000000000003", 2, partial=True),
        stored("00000002.history", 3),
        stored("000000020000000000000003", 4),
        stored("000000020000000000000004", 5, partial=True),
    ]
    window = recoverable_window(base(), wal)
    assert window.chain == (
        "000000010000000000000002",
        "000000020000000000000003",
        "000000020000000000000004",
    )
    assert window.histories == ("00000002.history",)
    assert window.timeline == 2
    assert window.end == STOPPED.add(minutes=5)


def test_older_timelines_and_earlier_segments_are_ignored() -> None:
    wal = [stored("000000010000000000000001", 0), stored("000000020000000000000005", 9)]
    window = recoverable_window(base(stop_lsn="0/5000100", timeline=2), wal)
    assert window.chain == ("000000020000000000000005",)


def test_a_partial_upload_is_only_ever_the_last_segment() -> None:
    wal = [
        stored("000000010000000000000002", 1),
        stored("000000010000000000000003", 2, partial=True),
        stored("000000010000000000000004", 3),
    ]
    window = recoverable_window(base(), wal)
    assert window.gap_after == "000000010000000000000003"
    assert window.chain[-1] == "000000010000000000000003"
    assert window.last_partial


def test_a_timeline_that_branches_off_while_the_old_one_goes_on_is_a_fork() -> None:
    """A restored copy promoted to timeline 2 streaming into production's S3_PATH, while
    production goes on writing timeline 1."""
    wal = [
        stored("000000010000000000000002", 1),
        stored("00000002.history", 3),
        stored("000000020000000000000002", 4),
        stored("000000020000000000000003", 5, partial=True),
        stored("000000010000000000000003", 6, partial=True),
    ]
    window = recoverable_window(base(), wal)
    assert window.timeline == 1
    assert window.chain == ("000000010000000000000002", "000000010000000000000003")
    assert window.histories == ()
    assert len(window.forks) == 1
    assert "timeline 2" in window.forks[0]
    followed = recoverable_window(base(), wal, 2)
    assert followed.timeline == 2
    assert followed.chain[-1] == "000000020000000000000003"
    assert recoverable_window(base(), wal, "latest").timeline == 2


def test_end_lsn_is_the_end_of_the_chains_last_segment() -> None:
    wal = [stored("000000010000000000000002", 1), stored("000000010000000000000003", 2)]
    assert recoverable_window(base(), wal).end_lsn == 4 * 16 * 1024 * 1024
    assert recoverable_window(base(), []).end_lsn == 0x2000120
