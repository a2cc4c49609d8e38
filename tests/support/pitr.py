"""What the point-in-time recovery tests share: the settings of a PITR set-up, a running
stream, commits to recover to, and ways to look at what the archive and a restore hold."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pendulum

from tests.support.pgserver import PgServer
from tests.support.procs import read_proc
from tests.support.procscan import descendants
from tests.support.runner import clean_environment, moonflower_command
from tests.support.s3server import S3Server
from tests.support.waiting import eventually

PUSH_SECONDS = 1


UNPRIVILEGED = "nobody"


def pitr_env(
    source: PgServer, s3: S3Server, bucket: str, spool: Path, **extra: str
) -> dict[str, str]:
    return {
        **source.moonflower_env("app"),
        **s3.moonflower_env(bucket, "pitr"),
        "BACKUP_SPOOL_DIR": str(spool),
        "BACKUP_STATE_DIR": str(spool),
        "WAL_STREAM": "on",
        "WAL_PUSH_INTERVAL": str(PUSH_SECONDS),
        **extra,
    }


class Streaming:
    """`moonflower run` with WAL_STREAM=on in the background, its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            moonflower_command("run"),
            env=clean_environment(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log_path.read_text()

    def wait_started(self) -> None:
        assert eventually(lambda: "WAL streaming started" in self.text(), 60), self.text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


def commit_rows(server: PgServer, first: int, count: int) -> None:
    """One transaction per row, about a fifth of a second apart."""
    for n in range(first, first + count):
        server.psql(
            f"INSERT INTO ledger VALUES ({n}, clock_timestamp()); SELECT pg_sleep(0.2)", "app"
        )


def commit_times(server: PgServer) -> list[tuple[int, pendulum.DateTime]]:
    rows = server.psql(
        "SELECT n, to_char(committed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
        "FROM ledger ORDER BY n",
        "app",
    )
    return [
        (int(n), pendulum.parse(moment + "Z"))  # type: ignore[misc]
        for n, moment in (line.split("|") for line in rows.splitlines())
    ]


def archive_caught_up(
    s3: S3Server, bucket: str, server: PgServer, seconds: float = 60
) -> list[tuple[int, pendulum.DateTime]]:
    """The commit times of the rows, once S3 holds WAL pushed a second after the last. Each
    look also writes a little WAL outside the tested database: on a quiet server everything
    may have gone up within that second, and nothing newer would ever be pushed."""
    times = commit_times(server)

    def caught_up() -> bool:
        if archived_after(s3, bucket, times[-1][1].add(seconds=1)):
            return True
        server.psql(
            "CREATE TABLE IF NOT EXISTS moonflower_test_tick (at timestamptz); "
            "INSERT INTO moonflower_test_tick VALUES (clock_timestamp())"
        )
        return False

    assert eventually(caught_up, seconds)
    return times


def stream_rows(
    env: dict[str, str], log_path: Path, server: PgServer, first: int, s3: S3Server, bucket: str
) -> None:
    """Stream while five rows are committed from `first`, until S3 holds their WAL."""
    streaming = Streaming(env, log_path)
    try:
        streaming.wait_started()
        commit_rows(server, first, 5)
        server.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, server)
    finally:
        assert streaming.stop() == 0, streaming.text()


def archived_after(s3: S3Server, bucket: str, moment: pendulum.DateTime) -> bool:
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="pitr/wal/")
    return any(
        pendulum.instance(item["LastModified"]) > moment for item in listing.get("Contents", [])
    )


LAST_SERVER_LOG: list[str] = []
"""The log of the server restored_rows ran last, for assertion messages."""


def restored_rows(directory: Path, password: str) -> list[int]:
    with PgServer(password=password, data_dir=directory) as restored:
        output = restored.psql("SELECT n FROM ledger ORDER BY n", "app")
        LAST_SERVER_LOG[:] = [restored.log_file.read_text()]
    return [int(line) for line in output.splitlines()]


def archive_only_env(s3: S3Server, bucket: str, spool: Path) -> dict[str, str]:
    """wal-push and wal-fetch talk to S3 only: no PG_* setting is needed."""
    return {
        **s3.moonflower_env(bucket, "pitr"),
        "BACKUP_SPOOL_DIR": str(spool),
        "ENCRYPTION_PASSPHRASE": "archive passphrase",
    }


def receivers_of(process: subprocess.Popen[bytes]) -> list[int]:
    return [
        int(pid)
        for pid in descendants(process.pid)
        if b"pg_receivewal" in read_proc(pid, "cmdline").split(b"\0")[0]
    ]


def server_user_can_run_moonflower() -> bool:
    """As root, the server runs as `nobody`, which must be able to start bin/moonflower (a
    virtualenv made from an interpreter under /root is closed to it)."""
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
            *moonflower_command("--version"),
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def base_descriptions(s3: S3Server, bucket: str) -> list[dict[str, object]]:
    client = s3.client()
    keys = sorted(key for key in s3.keys(bucket) if key.endswith("/backup.json"))
    return [json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]


@contextlib.contextmanager
def empty_restore_dir() -> Iterator[Path]:
    """An empty directory the server's user can reach (and own, when tests run as root)."""
    parent = Path(tempfile.mkdtemp(prefix="mf-pitr-"))
    parent.chmod(0o755)
    target = parent / "restored"
    target.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(target, UNPRIVILEGED, "nogroup")
    try:
        yield target
    finally:
        shutil.rmtree(parent, ignore_errors=True)
