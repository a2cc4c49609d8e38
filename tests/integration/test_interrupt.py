"""SIGTERM in the middle of a dump: exit 143, no object, no spool file, no child left."""

import signal
from pathlib import Path

import pytest

from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import interrupt_while_dumping, slow_dumps_running, use_slow_pg_dump


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
