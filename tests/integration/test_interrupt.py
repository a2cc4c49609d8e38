"""SIGTERM in the middle of a dump: exit 143, no object, no spool file, no child left."""

import signal
from pathlib import Path

import pytest

from tests.support.runner import run_moonflower, start_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import (
    interrupt_while_dumping,
    slow_dumps_running,
    use_slow_pg_dump,
    wait_until_dumping,
)
from tests.support.waiting import eventually


def test_sigterm_during_a_dump_cleans_up(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["PG_DATABASES"] = "second"
    result = interrupt_while_dumping(env=backup_env, spool_dir=spool_dir)

    assert result.returncode == 143, result.stderr
    assert "terminated" in result.stderr
    assert list(spool_dir.iterdir()) == []
    assert s3.keys(bucket) == []
    assert slow_dumps_running() == []


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_status_file_records_an_interrupted_run_with_its_exit_status(
    backup_env: dict[str, str], spool_dir: Path, tmp_path: Path, signum: int, status: int
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env.update(PG_DATABASES="second", BACKUP_STATE_DIR=str(state))

    result = interrupt_while_dumping(env=backup_env, spool_dir=spool_dir, signum=signum)
    health = run_moonflower("health", env=backup_env)

    assert result.returncode == status, result.stderr
    assert health.returncode == 1
    assert f"(exit status {status})" in health.stdout


def test_the_pipeline_dies_with_a_killed_moonflower(
    backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL cannot be handled, so the kernel must stop the children (PR_SET_PDEATHSIG):
    a pg_dump left running would hold its transaction open until it finished."""
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["PG_DATABASES"] = "second"
    process = start_moonflower(env=backup_env, quiet=True)
    try:
        assert wait_until_dumping(spool_dir), "the slow dump never started"
    finally:
        process.kill()
        process.wait(timeout=60)

    assert eventually(lambda: slow_dumps_running() == [], 10), "the dump outlived Moonflower"
