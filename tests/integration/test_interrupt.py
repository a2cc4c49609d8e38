"""SIGTERM in the middle of a dump: exit 143, no object, no spool file, no child left."""

import signal
import subprocess
from pathlib import Path

from tests.support.runner import clean_environment, moonflower_command
from tests.support.s3server import S3Server
from tests.support.slowdump import (
    WAIT_SECONDS,
    processes_with,
    use_slow_pg_dump,
    wait_until_dumping,
)


def test_sigterm_during_a_dump_cleans_up(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["PG_DATABASES"] = "second"
    process = subprocess.Popen(
        moonflower_command(),
        env=clean_environment(backup_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_until_dumping(spool_dir), "the slow dump never started"

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=WAIT_SECONDS)

    assert process.returncode == 143, stderr
    assert "terminated" in stderr
    assert list(spool_dir.iterdir()) == []
    assert s3.keys(bucket) == []
    assert processes_with() == []
