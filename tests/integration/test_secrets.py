"""Secrets never reach process arguments, child environments or output."""

import os
import subprocess
import time
from pathlib import Path

from tests.support.runner import RUN_TIMEOUT_SECONDS, clean_environment, moonflower_command
from tests.support.s3server import SECRET_KEY, S3Server

PG_PASSWORD = "pg s3cr3t 'quoted' $HOME \"x\""


def read_proc(pid: str, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def descendants(root: int) -> set[str]:
    children: dict[str, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_proc(entry, "stat").decode(errors="replace")
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1:
                children.setdefault(fields[1], []).append(entry)
    found: set[str] = set()
    pending = [str(root)]
    while pending:
        pid = pending.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def test_no_secret_in_any_argv_child_environment_or_output(
    pg,
    s3: S3Server,
    backup_env: dict[str, str],
) -> None:
    quoted = PG_PASSWORD.replace("'", "''")
    pg.psql(
        f'DROP ROLE IF EXISTS "backup operator"; '
        f"CREATE ROLE \"backup operator\" LOGIN SUPERUSER PASSWORD '{quoted}'"
    )
    backup_env["PG_USER"] = "backup operator"
    backup_env["PG_PASSWORD"] = PG_PASSWORD
    secrets = [PG_PASSWORD.encode(), SECRET_KEY.encode()]
    process = subprocess.Popen(
        moonflower_command(),
        env=clean_environment(backup_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    leaks: list[str] = []
    seen_pg_dump = False
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        own_cmdline = read_proc(str(process.pid), "cmdline")
        # A child between fork and exec still shows our own argv and environment: skip those.
        children = {
            pid for pid in descendants(process.pid) if read_proc(pid, "cmdline") != own_cmdline
        }
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            cmdline = read_proc(pid, "cmdline")
            seen_pg_dump = seen_pg_dump or b"pg_dump\x00" in cmdline
            sources = [cmdline] + ([read_proc(pid, "environ")] if pid in children else [])
            for source in sources:
                for secret in secrets:
                    if secret in source:
                        leaks.append(f"pid {pid}: {source[:200]!r}")
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)

    assert process.returncode == 0, stderr.decode()
    assert seen_pg_dump, "the scan never saw pg_dump running, so it proved nothing"
    assert leaks == []
    for secret in secrets:
        assert secret not in stdout
        assert secret not in stderr


def test_secrets_in_error_messages_are_masked(backup_env: dict[str, str]) -> None:
    """A password that shows up in a server error is masked in the output."""
    backup_env["PG_PASSWORD"] = "wrong-but-secret-value"
    backup_env["PG_DATABASES"] = "wrong-but-secret-value"

    result = subprocess.run(
        moonflower_command(),
        env=clean_environment(backup_env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )

    assert result.returncode == 1
    assert "wrong-but-secret-value" not in result.stderr + result.stdout
    assert "********" in result.stderr
