import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer
from tests.support.s3server import S3Server

NASTY_SQL = Path(__file__).parent / "support" / "nasty.sql"
NASTY_DATABASE = "données☃"
SECOND_DATABASE = "second"


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    with PgServer() as server:
        server.create_database(NASTY_DATABASE, NASTY_SQL)
        server.create_database(SECOND_DATABASE)
        server.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);", SECOND_DATABASE)
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


@pytest.fixture
def backup_env(pg: PgServer, s3: S3Server, bucket: str, spool_dir: Path) -> dict[str, str]:
    """A complete, valid configuration for one backup of the nasty database."""
    env = dict(pg.moonflower_env(NASTY_DATABASE))
    env.update(s3.moonflower_env(bucket, "nightly"))
    env["BACKUP_SPOOL_DIR"] = str(spool_dir)
    return env
