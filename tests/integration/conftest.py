"""Fixtures of the point-in-time recovery tests: a source server of its own, and an empty
directory a restored server can run from."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer

UNPRIVILEGED = "nobody"


@pytest.fixture
def source() -> Iterator[PgServer]:
    with PgServer() as server:
        server.create_database("app")
        server.psql("CREATE TABLE ledger (n int PRIMARY KEY, committed timestamptz)", "app")
        yield server


@pytest.fixture
def restore_dir() -> Iterator[Path]:
    """An empty directory the server's user can reach (and own, when tests run as root)."""
    parent = Path(tempfile.mkdtemp(prefix="mf-pitr-"))
    parent.chmod(0o755)
    target = parent / "restored"
    target.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(target, UNPRIVILEGED, "nogroup")
    yield target
    shutil.rmtree(parent, ignore_errors=True)
