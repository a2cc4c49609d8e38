"""A reader that closes standard output early (`moonflower list --json | head -3`) ends the
command quietly, as it ends any Unix tool (issue 28, item 8)."""

import signal
import subprocess

import pytest

from tests.support.runner import clean_environment, moonflower_command
from tests.support.s3server import S3Server

BACKUPS = 400


@pytest.mark.parametrize("arguments", [("list", "--json"), ("list",)])
def test_a_closed_standard_output_ends_quietly(
    s3: S3Server, backup_env: dict[str, str], arguments: tuple[str, ...]
) -> None:
    client = s3.client()
    bucket, prefix = backup_env["S3_BUCKET"], backup_env.get("S3_PATH", "")
    for n in range(BACKUPS):
        key = f"database{n:04d}_2026-11-01T00:00:00.000Z.sql.gz"
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key, Body=b"x")
    process = subprocess.Popen(
        moonflower_command(*arguments),
        env=clean_environment(backup_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    for _ in range(3):
        assert process.stdout.readline()
    process.stdout.close()  # the reader goes away, as `head -3` does
    errors = process.stderr.read().decode()
    code = process.wait(timeout=120)
    assert code in (0, -signal.SIGPIPE, 128 + signal.SIGPIPE), (code, errors)
    assert "Broken pipe" not in errors
    assert "unexpected error" not in errors
    assert "Traceback" not in errors
