"""`make sandbox` as a newcomer uses it: the printed settings, sourced in another shell, run
`check`, `backup`, `list` and `restore`; Ctrl-C leaves no process, no port and no file."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from tests.support.procs import all_pids, read_proc
from tests.support.runner import CHECKOUT, run_moonflower
from tests.support.waiting import eventually

START_SECONDS = 120


def sourced(env_file: Path) -> dict[str, str]:
    """The settings as `set -a; . FILE` gives them to a shell."""
    output = subprocess.run(
        ["bash", "-c", f'set -a; . "{env_file}"; set +a; env -0'],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    ).stdout.decode()
    pairs = (entry.split("=", 1) for entry in output.split("\0") if "=" in entry)
    return {name: value for name, value in pairs if name.startswith(("PG_", "S3_", "BACKUP_"))}


def answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes_naming(text: str) -> list[str]:
    return [
        pid for pid in all_pids() if text.encode() in read_proc(pid, "cmdline").replace(b"\0", b" ")
    ]


def test_the_sandbox_settings_back_up_and_restore_and_ctrl_c_leaves_nothing(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / "sandbox.env"
    sandbox = subprocess.Popen(
        [sys.executable, str(CHECKOUT / "scripts" / "sandbox.py"), "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal of its own
    )
    try:
        assert eventually(env_file.exists, START_SECONDS)
        env = sourced(env_file)
        assert env["PG_DATABASES"] == "shop"
        for command in (["check"], ["backup"], ["list"]):
            done = run_moonflower(*command, env=env)
            assert done.returncode == 0, (command, done.stderr)
        restored = run_moonflower("restore", "shop", "--into", "shop_copy", env=env)
        assert restored.returncode == 0, restored.stderr
        listed = run_moonflower("list", "--json", env=env)
        assert '"database": "shop"' in listed.stdout
    finally:
        os.killpg(sandbox.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        output = sandbox.communicate(timeout=120)[0].decode()
    assert sandbox.returncode == 0, output
    assert "export PG_PORT=" in output
    assert "the sandbox is stopped" in output
    assert not env_file.exists()
    pg_port, s3_port = int(env["PG_PORT"]), urlparse(env["S3_ENDPOINT"]).port or 0
    assert not answers(pg_port)
    assert not answers(s3_port)
    assert processes_naming(f"-p {pg_port}") == []
    assert processes_naming(f"-s3.port={s3_port}") == []
