"""Streams and schedules that never die quietly (issue 27, items 10 to 13): the WAL stream
beside a logical schedule (also as PID 1), a gap without a logical schedule, a failing
scheduled base backup, and a WAL-only set-up, through real PostgreSQL, moto and receivers."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer
from tests.support.pitr import (
    Streaming,
    archive_caught_up,
    commit_rows,
    pitr_env,
    receivers_of,
)
from tests.support.procs import read_proc
from tests.support.procscan import descendants
from tests.support.runner import clean_environment, moonflower_command, run_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually
from tests.support.webhookserver import WebhookReceiver

NEVER = "0 0 1 1 *"
"""A logical schedule that does not fire during a test: the scheduler idles (and reaps)."""
AS_PID_ONE = ("unshare", "--pid", "--mount-proc", "--kill-child", "--fork")


def can_be_pid_one() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*AS_PID_ONE, "true"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


class Background(Streaming):
    """`moonflower run` under a wrapper (an `unshare` that makes it PID 1)."""

    def __init__(self, env: dict[str, str], log_path: Path, wrapper: tuple[str, ...]) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [*wrapper, *moonflower_command("run")],
            env=clean_environment(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wrapped = bool(wrapper)

    def stop(self) -> int:
        """SIGTERM to Moonflower itself: `unshare` does not pass it on."""
        if not self.wrapped:
            return super().stop()
        inside = [
            int(pid)
            for pid in descendants(self.process.pid)
            if b"moonflower" in read_proc(pid, "cmdline")
        ]
        for pid in inside:
            os.kill(pid, signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


@pytest.mark.parametrize("as_pid_one", [False, True], ids=["process", "pid-1"])
def test_the_wal_stream_lives_beside_an_idle_logical_schedule(
    source: PgServer, s3: S3Server, tmp_path: Path, as_pid_one: bool
) -> None:
    if as_pid_one and not can_be_pid_one():
        pytest.skip("needs root and unshare for a PID namespace")
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, SCHEDULE=NEVER, BACKUP_COMPRESSION="zstd")
    run = Background(env, tmp_path / "run.log", AS_PID_ONE if as_pid_one else ())
    try:
        run.wait_started()
        for first in range(0, 30, 5):  # some 6 s of commits and pushes while it idles
            commit_rows(source, first, 5)
            source.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, source)
        assert "No child processes" not in run.text()
        assert "stopped" not in run.text().replace("WAL streaming stopped", ""), run.text()
        assert run.text().count("WAL streaming started") == 1, run.text()
        if not as_pid_one:  # a pid in another namespace means nothing here
            health = run_moonflower("health", env=env)
            assert health.returncode == 0, health.stdout + health.stderr
    finally:
        assert run.stop() == 0, run.text()


def test_a_gap_is_unhealthy_without_a_logical_schedule_and_heals(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    """The slot is lost while Moonflower is down and the server recycles the WAL after the
    segment it was writing: the stream reports a gap, resumes from a new slot instead of
    retrying the lost position forever, and a new base backup ends the alarm."""
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    del env["PG_DATABASES"]  # a WAL-only set-up needs none
    first = Streaming(env, tmp_path / "run-1.log")
    try:
        first.wait_started()
        commit_rows(source, 0, 3)
    finally:
        assert first.stop() == 0, first.text()
    assert list(tmp_path.glob("wal-stream-moonflower/*.partial"))
    source.psql("SELECT pg_drop_replication_slot('moonflower')")
    for n in range(3, 8):
        source.psql(f"INSERT INTO ledger VALUES ({n}, now())", "app")
        source.psql("SELECT pg_switch_wal()")
        source.psql("CHECKPOINT")
    streaming = Streaming(env, tmp_path / "run-2.log")
    try:
        assert eventually(lambda: "the WAL chain has a gap" in streaming.text(), 60)
        sick = run_moonflower("health", env=env)
        assert sick.returncode == 1, sick.stdout + sick.stderr
        assert "gap" in sick.stdout
        assert eventually(lambda: streaming.text().count("WAL streaming started") >= 2, 60)
        assert run_moonflower("basebackup", env=env).returncode == 0
        commit_rows(source, 8, 3)
        source.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, source)
        assert eventually(lambda: run_moonflower("health", env=env).returncode == 0, 60), (
            streaming.text()
        )
        assert "unbroken chain again" in streaming.text()
        assert streaming.text().count("the WAL chain has a gap") == 1, streaming.text()
    finally:
        assert streaming.stop() == 0, streaming.text()


def test_a_failing_scheduled_base_backup_is_reported_everywhere(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    source.psql("CREATE ROLE plain LOGIN PASSWORD 'plain-password'")
    bucket = s3.new_bucket()
    textfile = tmp_path / "metrics.prom"
    with WebhookReceiver() as receiver:
        env = {
            **pitr_env(source, s3, bucket, tmp_path),
            "PG_USER": "plain",  # no REPLICATION: pg_basebackup fails
            "PG_PASSWORD": "plain-password",
            "WAL_STREAM": "off",
            "BASEBACKUP_SCHEDULE": "*/2 * * * * *",
            "WEBHOOK_FAILURE": receiver.url("/fail"),
            "METRICS_TEXTFILE": str(textfile),
        }
        run = Streaming(env, tmp_path / "run.log")
        try:
            assert receiver.wait_for(1, 90), run.text()
            assert b"base backup failed" in receiver.received[0].body
            health = run_moonflower("health", env=env)
            assert health.returncode == 1, health.stdout
            assert "the last base backup" in health.stdout
            assert eventually(lambda: textfile.exists(), 30)
            assert 'moonflower_job_last_result{kind="basebackup"} 0.0' in textfile.read_text()
            status = run_moonflower("status", env=env)
            assert status.returncode == 0, status.stderr
        finally:
            assert run.stop() == 0, run.text()


def test_a_wal_only_set_up_needs_no_database_list(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path)
    del env["PG_DATABASES"]
    check = run_moonflower("check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 2)
        source.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, source)
        health = run_moonflower("health", env=env)
        assert health.returncode == 0, health.stdout + health.stderr
        assert "streaming WAL, last WAL upload" in health.stdout
        assert "None" not in health.stdout
    finally:
        assert streaming.stop() == 0, streaming.text()
    s3_only = {k: v for k, v in env.items() if not k.startswith("PG_")}
    listing = run_moonflower("list", "--json", env=s3_only)
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == []
    assert run_moonflower("status", env=s3_only).returncode == 0
    logical = run_moonflower("run", env={**env, "SCHEDULE": NEVER})
    assert logical.returncode == 2
    assert "PG_DATABASES" in logical.stderr


def test_the_last_wal_leaves_as_soon_as_the_server_is_gone(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    """Issue 29, item 4: with a long WAL_PUSH_INTERVAL, the final partial segment of a killed
    server still reaches S3 within seconds of the receiver's exit, not an interval later."""
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, WAL_PUSH_INTERVAL="60")
    streaming = Streaming(env, tmp_path / "run.log")

    def partials() -> set[str]:
        return {key for key in s3.keys(bucket) if ".partial." in key}

    try:
        streaming.wait_started()
        assert eventually(lambda: receivers_of(streaming.process), 60), streaming.text()
        commit_rows(source, 0, 3)
        assert eventually(lambda: bool(partials()), 90), streaming.text()  # the first round's
        before = partials()
        source.kill()
        assert eventually(lambda: "pg_receivewal stopped" in streaming.text(), 30)
        assert eventually(lambda: bool(partials() - before), 10), streaming.text()
    finally:
        streaming.stop()
