"""SIGTERM in the middle of a dump: exit 143, no object, no spool file, no child left."""

from pathlib import Path

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
