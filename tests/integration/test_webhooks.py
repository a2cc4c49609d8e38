"""Webhooks against a real local HTTP receiver."""

import signal
import time
from pathlib import Path

from moonflower import __version__
from tests.support.pgserver import free_port
from tests.support.runner import run_moonflower, start_moonflower
from tests.support.s3server import SECRET_KEY, S3Server
from tests.support.slowdump import WAIT_SECONDS, interrupt_while_dumping, use_slow_pg_dump
from tests.support.webhookserver import HANG, WebhookReceiver


def hook_env(receiver: WebhookReceiver, post_logs: bool = False) -> dict[str, str]:
    env = {
        "WEBHOOK_START": receiver.url("/ping/start"),
        "WEBHOOK_SUCCESS": receiver.url("/ping"),
        "WEBHOOK_FAILURE": receiver.url("/ping/fail"),
    }
    if post_logs:
        env["WEBHOOK_POST_LOGS"] = "1"
    return env


def test_a_good_run_sends_start_then_success_with_empty_bodies(
    backup_env: dict[str, str],
) -> None:
    backup_env["PG_DATABASES"] = "second"
    with WebhookReceiver() as receiver:
        backup_env.update(hook_env(receiver))
        result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert receiver.paths() == ["/ping/start", "/ping"]
    assert all(request.body == b"" for request in receiver.received)
    assert receiver.received[0].headers["User-Agent"] == f"moonflower/{__version__}"


def test_a_failed_run_posts_its_log_ending_with_the_reason_and_no_secret(
    backup_env: dict[str, str],
) -> None:
    backup_env["PG_PASSWORD"] = "wrong-pg-password"
    with WebhookReceiver() as receiver:
        backup_env.update(hook_env(receiver, post_logs=True))
        result = run_moonflower(env=backup_env)

    assert result.returncode == 1
    assert receiver.paths() == ["/ping/start", "/ping/fail"]
    failure = receiver.received[1]
    assert failure.headers["Content-Type"].startswith("text/plain")
    body = failure.body.decode()
    assert "password authentication failed" in body
    last_line = body.strip().splitlines()[-1]
    assert last_line.startswith("result: failed:")
    assert "password authentication failed" in last_line
    assert "wrong-pg-password" not in body
    assert SECRET_KEY not in body
    assert "\x1b[" not in body


def test_post_logs_off_values_keep_bodies_empty(backup_env: dict[str, str]) -> None:
    backup_env["PG_DATABASES"] = "second"
    with WebhookReceiver() as receiver:
        backup_env.update(hook_env(receiver))
        backup_env["WEBHOOK_POST_LOGS"] = "false"
        assert run_moonflower(env=backup_env).returncode == 0

    assert receiver.received[-1].body == b""


def test_a_receiver_failing_twice_gets_the_third_try(backup_env: dict[str, str]) -> None:
    backup_env["PG_DATABASES"] = "second"
    with WebhookReceiver(statuses=[500, 503, 200]) as receiver:
        backup_env.update(hook_env(receiver))
        result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert receiver.paths() == ["/ping/start"] * 3 + ["/ping"]


def test_a_dead_receiver_does_not_fail_or_stall_the_backup(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["PG_DATABASES"] = "second"
    dead = f"http://127.0.0.1:{free_port()}"
    backup_env.update(WEBHOOK_START=f"{dead}/start", WEBHOOK_SUCCESS=f"{dead}/ok")
    started = time.monotonic()

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "start webhook to" in result.stderr
    assert len(s3.keys(bucket)) == 1
    assert time.monotonic() - started < 30


def test_a_receiver_that_never_answers_delays_the_backup_by_a_bounded_time(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["PG_DATABASES"] = "second"
    backup_env["WEBHOOK_TIMEOUT"] = "1"
    with WebhookReceiver(statuses=[HANG] * 6) as receiver:
        backup_env.update(hook_env(receiver))
        started = time.monotonic()
        result = run_moonflower(env=backup_env)
        elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert len(s3.keys(bucket)) == 1
    # Per webhook: 3 attempts of 1 s plus 1 s and 2 s of backoff; two webhooks; slack for the run.
    assert elapsed < 2 * (3 * 1 + 1 + 2) + 10
    assert "success webhook to" in result.stderr


def test_every_scheduled_run_sends_its_own_pings(backup_env: dict[str, str]) -> None:
    backup_env.update(PG_DATABASES="second", SCHEDULE="*/2 * * * * *")
    with WebhookReceiver() as receiver:
        backup_env.update(hook_env(receiver))
        process = start_moonflower(env=backup_env, quiet=True)
        try:
            assert receiver.wait_for(4), "two runs did not ping in time"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=WAIT_SECONDS)

    assert receiver.paths()[:4] == ["/ping/start", "/ping", "/ping/start", "/ping"]


def test_sigterm_during_a_run_sends_the_failure_webhook(
    backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["PG_DATABASES"] = "second"
    with WebhookReceiver() as receiver:
        backup_env.update(hook_env(receiver, post_logs=True))
        result = interrupt_while_dumping(env=backup_env, spool_dir=spool_dir)

    assert result.returncode == 143, result.stderr
    assert receiver.paths() == ["/ping/start", "/ping/fail"]
    assert b"interrupted by SIGTERM" in receiver.received[1].body
