"""A notification receiver that trickles its answer never keeps a one-shot backup alive past
the notifications' deadline, and SIGTERM is honoured while it waits (issue 28, item 6)."""

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.runner import clean_environment, moonflower_command
from tests.support.waiting import eventually
from tests.support.webhookserver import TRICKLE_ON, WebhookReceiver

DEADLINE_SECONDS = 45
"""The notifications' whole budget (two attempts of 20 s) and a margin for the backup."""


@pytest.mark.slow
def test_a_trickling_receiver_never_keeps_the_process_alive(
    backup_env: dict[str, str],
) -> None:
    with WebhookReceiver([TRICKLE_ON] * 40) as chat:
        targets = " ".join(chat.url(f"/n{n}").replace("http://", "json://") for n in range(5))
        env = {
            **backup_env,
            "PG_DATABASES": "second",
            "NOTIFY_URLS": targets,
            "NOTIFY_ON": "always",
        }
        started = time.monotonic()
        process = subprocess.Popen(
            moonflower_command("backup"),
            env=clean_environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, errors = process.communicate(timeout=DEADLINE_SECONDS + 60)
        finally:
            process.kill()
        assert process.returncode == 0, errors
        assert time.monotonic() - started < DEADLINE_SECONDS + 15, errors
        assert "notification sent to 0 of 5 URL(s)" in errors


def test_sigterm_is_honoured_while_a_notification_trickles(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    with WebhookReceiver([TRICKLE_ON] * 4) as chat:
        target = chat.url("/slow").replace("http://", "json://")
        env = {**backup_env, "PG_DATABASES": "second", "NOTIFY_URLS": target, "NOTIFY_ON": "always"}
        process = subprocess.Popen(
            moonflower_command("backup"),
            env=clean_environment(env),
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "stderr").open("w"),
        )
        try:
            assert chat.wait_for(1, 120)
            time.sleep(1)  # the notification is trickling now
            process.send_signal(signal.SIGTERM)
            assert eventually(lambda: process.poll() is not None, 15), (
                tmp_path / "stderr"
            ).read_text()
            assert "terminated (SIGTERM)" in (tmp_path / "stderr").read_text()
        finally:
            process.kill()
            process.wait()
