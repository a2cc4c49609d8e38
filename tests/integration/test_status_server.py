"""The status server of `run` (METRICS_ADDRESS) stays out of the way of backups: an IPv6
address works, and a flood of idle connections can neither exhaust the process's file
descriptors nor stop a scheduled run (issue 28, items 2 and 4)."""

import contextlib
import resource
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pgserver import free_port
from tests.support.runner import clean_environment, moonflower_command
from tests.support.waiting import eventually

IDLE_CONNECTIONS = 1100
FILE_LIMIT = 1024


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            moonflower_command("run"),
            env=clean_environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limited,
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=60)


def healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_the_documented_ipv6_form_of_metrics_address_works(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {**backup_env, "SCHEDULE": "0 0 1 1 *", "METRICS_ADDRESS": f"[::1]:{port}"}
    with running(env, tmp_path / "run.log") as process:
        assert eventually(lambda: healthz(f"http://[::1]:{port}/healthz") in (200, 503), 60), (
            tmp_path / "run.log"
        ).read_text()
        assert process.poll() is None


@pytest.mark.slow
def test_idle_connections_never_stop_a_scheduled_backup(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < IDLE_CONNECTIONS + 100:
        pytest.skip("this test needs more file descriptors than the hard limit allows")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    log_path = tmp_path / "run.log"
    env = {**backup_env, "SCHEDULE": "*/3 * * * * *", "METRICS_ADDRESS": f"127.0.0.1:{port}"}
    idle: list[socket.socket] = []
    try:
        with running(env, log_path) as process:
            assert eventually(lambda: healthz(f"http://127.0.0.1:{port}/healthz") > 0, 60)
            for _ in range(IDLE_CONNECTIONS):
                with contextlib.suppress(OSError):
                    client = socket.create_connection(("127.0.0.1", port), timeout=5)
                    client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
                    idle.append(client)
            finished = log_path.read_text().count("exit status 0 (ok)")
            assert eventually(
                lambda: log_path.read_text().count("exit status 0 (ok)") >= finished + 2, 90
            ), log_path.read_text()
            assert process.poll() is None, log_path.read_text()
            assert "Too many open files" not in log_path.read_text()
            for client in idle:
                client.close()
            idle.clear()
            assert eventually(lambda: healthz(f"http://127.0.0.1:{port}/healthz") == 200, 60)
    finally:
        for client in idle:
            client.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
