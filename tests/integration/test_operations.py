"""`check`, `health` and `status`: what operators and container health checks call."""

import os
import signal
from pathlib import Path

from tests.support.runner import run_moonflower, start_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually
from tests.support.webhookserver import WebhookReceiver


def test_check_passes_on_a_good_setup_and_makes_no_backup(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    with WebhookReceiver() as receiver:
        backup_env.update(WEBHOOK_SUCCESS=receiver.url("/ok"), ENCRYPTION_PASSPHRASE="long enough")
        result = run_moonflower("check", env=backup_env)

    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("configuration", "database", "bucket writable", "encryption", "webhook success"):
        assert name in result.stdout
    assert "failed" not in result.stdout
    assert s3.keys(bucket) == []
    assert receiver.received == []


def test_check_fails_and_says_what(s3: S3Server, bucket: str, backup_env: dict[str, str]) -> None:
    backup_env.update(PG_DATABASES="second no_such_database", S3_GOVERNANCE="1 day")

    result = run_moonflower("check", env=backup_env)

    assert result.returncode == 1
    flat = " ".join(result.stdout.split())
    assert "no_such_database" in flat
    assert "does not exist" in flat
    assert "Object Lock" in flat


def test_health_and_status_follow_the_scheduler(backup_env: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    backup_env.update(BACKUP_STATE_DIR=str(state), PG_DATABASES="second")

    before = run_moonflower("health", env=backup_env)
    good = run_moonflower("backup", env=backup_env)
    after_good = run_moonflower("health", env=backup_env)
    bad = run_moonflower("backup", env={**backup_env, "PG_DATABASES": "no_such_database"})
    after_bad = run_moonflower("health", env=backup_env)

    assert before.returncode == 1
    assert good.returncode == 0
    assert after_good.returncode == 0, after_good.stdout
    assert bad.returncode == 1
    assert after_bad.returncode == 1
    assert "failed" in after_bad.stdout

    fresh = tmp_path / "fresh-state"
    fresh.mkdir()
    backup_env.update(SCHEDULE="0 0 1 1 *", BACKUP_STATE_DIR=str(fresh))
    scheduler = start_moonflower(env=backup_env, quiet=True)
    try:
        statuses: list[str] = []

        def status_shows_next_run() -> bool:
            statuses.append(run_moonflower("status", env=backup_env).stdout)
            return "next run" in statuses[-1]

        eventually(status_shows_next_run, 30)
        status = statuses[-1]
        running = run_moonflower("health", env=backup_env)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=30)
    stopped = run_moonflower("health", env=backup_env)

    assert "next run" in status
    assert f"pid {scheduler.pid}" in status
    assert running.returncode == 0, running.stdout
    assert stopped.returncode == 0, stopped.stdout  # stopped cleanly is not a failure
    assert "stopped cleanly" in stopped.stdout


def test_a_killed_scheduler_is_unhealthy(backup_env: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    backup_env.update(BACKUP_STATE_DIR=str(state), SCHEDULE="0 0 1 1 *", PG_DATABASES="second")
    scheduler = start_moonflower(env=backup_env, quiet=True)
    try:
        assert eventually(lambda: "next run" in run_moonflower("status", env=backup_env).stdout, 30)
    finally:
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait(timeout=30)

    health = run_moonflower("health", env=backup_env)

    assert health.returncode == 1
    assert "not running" in health.stdout


def test_check_finds_an_unusable_spool_directory(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    """As root, /proc passes the permission test but takes no file; as a user, a read-only
    directory is refused while the configuration is read. Either way check says so."""
    if os.geteuid() == 0:
        unusable = "/proc"
    else:
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        unusable = str(read_only)

    result = run_moonflower("check", env={**backup_env, "BACKUP_SPOOL_DIR": unusable})

    assert result.returncode != 0
    flat = " ".join((result.stdout + result.stderr).split())
    assert unusable in flat
    assert "spool" in flat.lower() or "BACKUP_SPOOL_DIR" in flat
