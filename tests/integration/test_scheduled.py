"""bin/moonflower in scheduled mode: several real backups, clean stops, no overlap."""

import gzip
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.support.runner import run_moonflower, start_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import slow_dumps_running, use_slow_pg_dump, wait_until_dumping
from tests.support.waiting import eventually

BOUND_SECONDS = 60
STOP_PROMISE_SECONDS = 5
"""docs/operations.md: SIGTERM while idle exits at once; allow a busy machine 5 s."""


class StderrReader:
    """Collects a process's stderr as it comes, so a test can wait for a log line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        self._thread.join(timeout=BOUND_SECONDS)
        return "".join(self.lines)

    def saw(self, fragment: str) -> bool:
        return any(fragment in line for line in list(self.lines))


def test_a_seconds_schedule_makes_several_complete_backups_and_stops_when_idle(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    backup_env["SCHEDULE"] = "*/2 * * * * *"
    backup_env["PG_DATABASES"] = "second"
    process = start_moonflower(env=backup_env)
    try:
        assert eventually(lambda: len(s3.keys(bucket)) >= 3), "fewer than 3 backups in time"
    finally:
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        _, stderr = process.communicate(timeout=BOUND_SECONDS)

    # The signal may land while idle (exit 0) or inside a run (exit 143); both are clean.
    assert process.returncode in (0, 143), stderr
    assert time.monotonic() - stopped_at < 5
    assert list(spool_dir.iterdir()) == []
    for key in s3.keys(bucket):
        target = tmp_path / "backup.sql.gz"
        s3.client().download_file(bucket, key, str(target))
        assert b"PostgreSQL database dump complete" in gzip.decompress(target.read_bytes())


def test_sigterm_while_idle_exits_0_within_a_second(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["SCHEDULE"] = "0 0 1 1 *"
    backup_env["BACKUP_ON_START"] = "true"
    backup_env["PG_DATABASES"] = "second"
    process = start_moonflower(env=backup_env)
    reader = StderrReader(process)
    assert eventually(lambda: reader.saw("next backup at")), "never went idle"
    assert len(s3.keys(bucket)) == 1, "the start-up backup did not happen"

    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    process.wait(timeout=BOUND_SECONDS)

    assert time.monotonic() - sent < STOP_PROMISE_SECONDS  # the documented promise
    assert process.returncode == 0, reader.text()


def test_sigterm_during_a_scheduled_run_exits_143_and_cleans_up(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["SCHEDULE"] = "* * * * * *"
    backup_env["PG_DATABASES"] = "second"
    process = start_moonflower(env=backup_env)
    assert wait_until_dumping(spool_dir)

    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=BOUND_SECONDS)

    assert process.returncode == 143, stderr
    assert time.monotonic() - sent < 5
    assert list(spool_dir.iterdir()) == []
    assert s3.keys(bucket) == []
    assert slow_dumps_running() == []


def test_sigint_during_a_run_exits_130(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["PG_DATABASES"] = "second"
    process = start_moonflower(env=backup_env)
    assert wait_until_dumping(spool_dir)

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=BOUND_SECONDS)

    assert process.returncode == 130, stderr
    assert list(spool_dir.iterdir()) == []
    assert slow_dumps_running() == []


def test_run_without_a_schedule_is_a_configuration_error(backup_env: dict[str, str]) -> None:
    result = run_moonflower("run", env=backup_env)

    assert result.returncode == 2
    assert "SCHEDULE: required by `moonflower run`" in result.stderr
