"""The middle tier: Moonflower's jobs run in this process, against a real S3 server spoken to
over HTTP (moto), real PostgreSQL and real gpg, through a Destination handed in as `run` and
every command hand it in. Faster than the end-to-end tests, and a failure names the piece."""

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from moonflower.config.loader import load_config
from moonflower.config.model import Config
from moonflower.storage.destination import Destination
from tests.support.pgserver import PgServer

SEGMENT = re.compile(r"[0-9A-F]{24}")


def configured(env: Mapping[str, str], **settings: str) -> Config:
    return load_config({**env, **settings}, notifying=False)


@pytest.fixture
def config(backup_env: dict[str, str]) -> Config:
    return configured(backup_env)


@pytest.fixture
def destination(config: Config) -> Destination:
    return Destination(config.s3)


@pytest.fixture
def wal_segment(pg: PgServer, tmp_path: Path) -> Path:
    """A real WAL segment: a copy of the oldest one the test server holds."""
    pg.psql("SELECT pg_switch_wal()")
    names = sorted(
        path.name for path in (pg.data_dir / "pg_wal").iterdir() if SEGMENT.match(path.name)
    )
    copy = tmp_path / names[0]
    shutil.copyfile(pg.data_dir / "pg_wal" / names[0], copy)
    return copy
