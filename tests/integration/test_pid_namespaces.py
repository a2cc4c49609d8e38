"""Leftovers are owned by locks, not by process ids: runs in other PID namespaces (containers
sharing a volume) and a container entrypoint that is PID 1 in every life."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower, start_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import kill_mid_upload
from tests.support.waiting import eventually

BOUND_SECONDS = 120
AS_PID_ONE = ("unshare", "--pid", "--mount-proc", "--kill-child")


def can_use_pid_namespaces() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*AS_PID_ONE, "true"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not can_use_pid_namespaces(), reason="needs root and unshare for PID namespaces"
)


def gated_pg_dump(pg: PgServer, directory: Path, gate: Path) -> str:
    """The real pg_dump, started only once `gate` exists (bounded): a run that stays in flight,
    its spool and password files in place, for as long as the test needs."""
    script = directory / "gated" / "pg_dump"
    script.parent.mkdir()
    real = pg.tool("pg_dump")
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec "{real}" --version; fi\n'
        "n=0\n"
        f'while [ ! -e "{gate}" ] && [ $n -lt {BOUND_SECONDS * 10} ]; do '
        "sleep 0.1; n=$((n + 1)); done\n"
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_a_run_in_another_pid_namespace_keeps_its_files(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    spool_dir: Path,
    tmp_path: Path,
) -> None:
    """Two instances share the spool and state directories; one is PID 1 of its own namespace.
    The other's start-up cleanup must not take the live run's files for a dead process's."""
    gate = tmp_path / "open"
    waiting = {**backup_env, "PG_DUMP_PATH": gated_pg_dump(pg, tmp_path, gate)}
    in_flight = start_moonflower(env=waiting, wrapper=AS_PID_ONE)
    try:
        assert eventually(
            lambda: any(p.name.endswith(".pgpass") for p in spool_dir.iterdir()), BOUND_SECONDS
        ), "the first run never started"

        neighbour = run_moonflower(env={**backup_env, "PG_DATABASES": "second"})
        gate.touch()
        _, stderr = in_flight.communicate(timeout=BOUND_SECONDS)
    finally:
        gate.touch()
        if in_flight.poll() is None:
            in_flight.kill()
            in_flight.communicate(timeout=BOUND_SECONDS)

    assert neighbour.returncode == 0, neighbour.stderr
    assert "left behind" not in neighbour.stderr
    assert in_flight.returncode == 0, stderr
    assert s3.databases(bucket, "nightly") == sorted([backup_env["PG_DATABASES"], "second"])
    assert list(spool_dir.iterdir()) == []


def test_pid_one_cleans_up_after_a_killed_pid_one(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    spool_dir: Path,
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    """The image's entrypoint is PID 1 in every life: after SIGKILL the next life has the same
    pid as the dead one, and must still remove its password file and abort its upload."""
    env = {
        **backup_env,
        "PG_DATABASES": big_database,
        "PG_DUMP_PATH": pausing_pg_dump,
        "BACKUP_COMPRESSION": "none",
    }
    kill_mid_upload(s3, bucket, env, wrapper=AS_PID_ONE)  # --kill-child passes SIGKILL on
    assert eventually(
        lambda: any(p.name.endswith(".pgpass") for p in spool_dir.iterdir()), BOUND_SECONDS
    )

    result = run_moonflower(env={**backup_env, "PG_DATABASES": "second"}, wrapper=AS_PID_ONE)

    assert result.returncode == 0, result.stderr
    assert "left behind by a Moonflower process that was killed" in result.stderr
    assert s3.no_uploads_left(bucket)
    assert list(spool_dir.iterdir()) == []
