"""The stream's bookkeeping on a real directory: which files wait, and the spool alarm."""

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from moonflower.config.loader import load_config
from moonflower.pitr.wal_stream import SPOOL_ALARM, WalStreamer, waiting_files
from moonflower.reporting.health import health
from tests.support.procs import read_proc
from tests.support.waiting import eventually

SEGMENT = 16 * 1024 * 1024


def streamer(spool: Path, published: list[dict[str, Any]]) -> WalStreamer:
    config = load_config(
        {
            "PG_DATABASES": "app",
            "PG_HOST": "127.0.0.1",
            "PG_USER": "u",
            "PG_PASSWORD": "p",
            "S3_ENDPOINT": "http://127.0.0.1:9",
            "S3_BUCKET": "b",
            "BACKUP_SPOOL_DIR": str(spool),
            "WAL_SPOOL_LIMIT": "64 MiB",
        }
    )
    stream = WalStreamer(
        config, None, spool / "pgpass", threading.Event(), on_state=published.append
    )  # type: ignore[arg-type]
    stream.directory.mkdir()
    return stream


def segment(directory: Path, name: str) -> None:
    with (directory / name).open("wb") as handle:
        handle.truncate(SEGMENT)  # sparse: the size is what counts


def test_waiting_files_are_completed_ones_history_first(tmp_path: Path) -> None:
    for name in ("000000020000000000000005", "000000010000000000000004", "00000002.history"):
        segment(tmp_path, name)
    segment(tmp_path, "000000020000000000000006.partial")
    (tmp_path / "junk.tmp").write_text("x")
    assert [path.name for path in waiting_files(tmp_path)] == [
        "000000010000000000000004",
        "00000002.history",
        "000000020000000000000005",
    ]


def test_the_spool_alarm_rises_once_and_clears(tmp_path: Path) -> None:
    published: list[dict[str, Any]] = []
    stream = streamer(tmp_path, published)
    for number in range(4):
        segment(stream.directory, f"0000000100000000000000{number:02X}")
    stream.check_spool()
    stream.publish()
    assert stream.state.problems == []
    segment(stream.directory, "000000010000000000000004")
    stream.check_spool()
    stream.publish()
    stream.check_spool()
    stream.publish()
    assert stream.state.problems == [SPOOL_ALARM]
    assert len(published) == 2  # the second round changed nothing
    for path in list(stream.directory.iterdir())[:3]:
        os.unlink(path)
    stream.check_spool()
    assert stream.state.problems == []


@pytest.fixture
def scheduler_pid() -> Iterator[int]:
    """A live process whose command line names Moonflower, as a running scheduler's does."""
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "moonflower"])
    try:
        assert eventually(lambda: b"moonflower" in read_proc(running.pid, "cmdline"), 30)
        yield running.pid
    finally:
        running.kill()
        running.wait()


def test_health_sees_a_stream_that_stays_down(scheduler_pid: int) -> None:
    def scheduler_state(stream: dict[str, Any]) -> dict[str, Any]:
        return {"scheduler": {"pid": scheduler_pid}, "wal_stream": stream}

    long_ago = pendulum.now("UTC").subtract(minutes=10).isoformat()
    just_now = pendulum.now("UTC").subtract(seconds=30).isoformat()
    assert not health(scheduler_state({"down_since": long_ago})).ok
    assert (
        "pg_receivewal has not been running"
        in health(scheduler_state({"down_since": long_ago})).reason
    )
    assert health(scheduler_state({"down_since": just_now})).ok  # a restart takes a while
    assert health(scheduler_state({"down_since": None})).ok
    assert not health(scheduler_state({"gap": "the WAL chain has a gap"})).ok
    assert not health(scheduler_state({"problems": [SPOOL_ALARM]})).ok


def test_a_wal_only_stream_decides_health_without_a_scheduler(scheduler_pid: int) -> None:
    """No SCHEDULE: the stream's own process stands for it (issue 27, items 11 and 13)."""
    just_now = pendulum.now("UTC").subtract(seconds=3).isoformat()
    streaming = {"pid": scheduler_pid, "running": True, "last_archived_at": just_now}
    verdict = health({"wal_stream": streaming})
    assert verdict.ok
    assert verdict.reason.startswith("streaming WAL, last WAL upload ")
    assert "None" not in verdict.reason
    gap = health({"wal_stream": {**streaming, "gap": "the WAL chain has a gap (x)"}})
    assert not gap.ok
    assert "gap" in gap.reason
    assert health({"wal_stream": {**streaming, "stopped": just_now, "gap": "x"}}).ok


def test_a_stream_whose_process_died_is_unhealthy() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass", "moonflower"])
    dead.wait()
    verdict = health({"wal_stream": {"pid": dead.pid, "running": True}})
    assert not verdict.ok
    assert "is not running" in verdict.reason


def test_base_backups_that_fail_or_stop_coming_are_unhealthy(scheduler_pid: int) -> None:
    now = pendulum.now("UTC")
    failed = {
        "pid": scheduler_pid,
        "schedule": "0 * * * *",
        "last_attempt": now.isoformat(),
        "last_ok": False,
        "last_error": "pg_basebackup failed",
    }
    verdict = health({"jobs": {"basebackup": failed}})
    assert not verdict.ok
    assert "the last base backup" in verdict.reason
    assert "pg_basebackup failed" in verdict.reason
    old = now.subtract(hours=3).isoformat()
    late = {"pid": scheduler_pid, "schedule": "0 * * * *", "last_ok": True, "last_success": old}
    verdict = health({"jobs": {"basebackup": late}})
    assert not verdict.ok
    assert "older than BASEBACKUP_SCHEDULE allows" in verdict.reason
    recent = {**late, "last_success": now.subtract(minutes=30).isoformat()}
    assert health({"jobs": {"basebackup": recent}}).ok


class PushOrder:
    """A WAL archive that records what went up, in order."""

    def __init__(self) -> None:
        self.pushed: list[str] = []

    def push(self, path: Path) -> bool:
        self.pushed.append(path.name)
        return True

    def push_partial(self, path: Path) -> bool:
        path.read_bytes()  # as the real push: a partial renamed meanwhile is not found
        self.pushed.append(path.name)
        return True


def test_a_partial_never_goes_up_ahead_of_the_segment_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_receivewal completes segment 0A and starts 0B while a round lists its files: the
    round must not push 0B's partial with 0A left behind (found by the host-loss RPO
    benchmark under pgbench: the archive had a gap at 0A)."""
    import moonflower.pitr.wal_stream as wal_stream

    stream = streamer(tmp_path, [])
    archive = PushOrder()
    stream.archive = archive  # type: ignore[assignment]
    first, second = "00000001000000000000000A", "00000001000000000000000B"
    (stream.directory / f"{first}.partial").write_bytes(b"a")
    listed = wal_stream.waiting_files

    def receiver_moves_on_meanwhile(directory: Path) -> list[Path]:
        files = listed(directory)
        if (directory / f"{first}.partial").exists():
            (directory / f"{first}.partial").rename(directory / first)
            (directory / f"{second}.partial").write_bytes(b"b")
        return files

    monkeypatch.setattr(wal_stream, "waiting_files", receiver_moves_on_meanwhile)
    stream.archive_waiting()
    monkeypatch.setattr(wal_stream, "waiting_files", listed)
    assert f"{second}.partial" not in archive.pushed
    stream.archive_waiting()
    assert archive.pushed.index(first) < archive.pushed.index(f"{second}.partial")
