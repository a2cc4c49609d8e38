"""Nothing waits forever: a dump stuck behind a lock, or one that never ends, fails in
bounded time and leaves nothing behind."""

import subprocess
import time
from pathlib import Path

from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import slow_dumps_running, use_slow_pg_dump
from tests.support.waiting import eventually

HOLD_SECONDS = 120


def test_a_dump_blocked_by_a_lock_gives_up_after_the_lock_wait_timeout(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    holder = subprocess.Popen(
        [pg.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=pg.client_env("second"),
        text=True,
    )
    assert holder.stdin is not None
    holder.stdin.write(
        f"BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({HOLD_SECONDS});\n"
    )
    holder.stdin.flush()
    try:
        locked = eventually(
            lambda: (
                pg.psql(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 't' AND l.mode = 'AccessExclusiveLock' AND l.granted",
                    "second",
                )
                == "1"
            )
        )
        assert locked, "the test could not take the lock"
        started = time.monotonic()
        result = run_moonflower(
            env={**backup_env, "PG_DATABASES": "second", "PG_LOCK_WAIT_TIMEOUT": "2 seconds"}
        )
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=30)
        # The server does not notice a vanished client during pg_sleep: end the backend, or
        # the lock stays for HOLD_SECONDS and holds up every later test that dumps "second".
        pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()",
            "second",
        )

    assert result.returncode == 1
    assert "could not lock a table within PG_LOCK_WAIT_TIMEOUT" in result.stderr
    assert elapsed < HOLD_SECONDS / 2
    assert s3.keys(bucket) == []


def test_a_dump_that_never_ends_is_stopped_at_the_backup_timeout(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env.update(PG_DATABASES="second", BACKUP_TIMEOUT="2 seconds")
    started = time.monotonic()

    result = run_moonflower(env=backup_env)

    assert result.returncode == 1
    assert "BACKUP_TIMEOUT" in result.stderr
    assert time.monotonic() - started < 60
    assert s3.keys(bucket) == []
    assert list(spool_dir.iterdir()) == []
    assert slow_dumps_running() == []
