"""A pg_dump that never finishes, to interrupt backups at a known point."""

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.support.procs import processes_with
from tests.support.runner import start_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually

MARKER = "moonflower-test-slow-dump"
WAIT_SECONDS = 60


def fake_pg_dump(directory: Path, body: str) -> Path:
    """A `pg_dump` script that claims a version newer than any server and then runs `body`."""
    script = directory / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi\n' + body
    )
    script.chmod(0o755)
    return script


def use_slow_pg_dump(env: dict[str, str], scratch: Path) -> None:
    """Point PG_DUMP_PATH at a pg_dump that writes a little, then hangs.

    Its path contains MARKER, so its process can be found in /proc.
    """
    directory = scratch / MARKER
    directory.mkdir()
    script = fake_pg_dump(directory, "echo '-- partial dump'\nwhile :; do sleep 0.1; done\n")
    env["PG_DUMP_PATH"] = str(script)


def slow_dumps_running() -> list[str]:
    return processes_with(MARKER)


def wait_until_dumping(spool_dir: Path) -> bool:
    """True once the spool file exists and the slow pg_dump runs (bounded wait)."""
    return eventually(lambda: list(spool_dir.iterdir()) and slow_dumps_running(), WAIT_SECONDS)


def interrupt_while_dumping(
    *args: str, env: dict[str, str], spool_dir: Path, signum: int = signal.SIGTERM
) -> subprocess.CompletedProcess[str]:
    """Start bin/moonflower, wait until the slow dump runs, send `signum`, collect the outcome."""
    process = start_moonflower(*args, env=env)
    if not wait_until_dumping(spool_dir):
        process.kill()
        process.communicate(timeout=WAIT_SECONDS)
        raise AssertionError("the slow dump never started")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def kill_mid_upload(
    s3: S3Server, bucket: str, env: dict[str, str], wrapper: Sequence[str] = ()
) -> None:
    """Start bin/moonflower (run by `wrapper`), SIGKILL it once its multipart upload has begun,
    and wait until it is gone. `env` should hold the dump back (the pausing pg_dump)."""
    victim = start_moonflower(env=env, quiet=True, wrapper=wrapper)
    started = eventually(
        lambda: s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads"), WAIT_SECONDS
    )
    assert started, "the multipart upload never started"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=WAIT_SECONDS)
