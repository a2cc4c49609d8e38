"""What a run asks PostgreSQL before dumping: once for the whole run, not once per database."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from moonflower.postgres.queries import cluster_facts
from tests.conftest import NASTY_DATABASE, SECOND_DATABASE
from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server

ODD_NAME = "odd|name\nwith a newline ☃"
PRIVATE_DATABASE = "facts_private"
LIMITED_ROLE = "facts_limited"
LIMITED_PASSWORD = "limited-pass"


def libpq(pg: PgServer, user: str, password: str, directory: Path) -> dict[str, str]:
    passfile = directory / f"{user}.pgpass"
    passfile.write_text(f"*:*:*:*:{password}\n")
    passfile.chmod(0o600)
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": user,
        "PGDATABASE": "postgres",
        "PGPASSFILE": str(passfile),
    }


@pytest.fixture
def odd_database(pg: PgServer) -> Iterator[str]:
    pg.create_database(ODD_NAME)
    yield ODD_NAME
    pg.psql(f'DROP DATABASE "{ODD_NAME}"')


@pytest.fixture
def private_database(pg: PgServer) -> Iterator[str]:
    pg.create_database(PRIVATE_DATABASE)
    pg.psql(f"REVOKE CONNECT ON DATABASE {PRIVATE_DATABASE} FROM PUBLIC")
    pg.psql(f"CREATE ROLE {LIMITED_ROLE} LOGIN PASSWORD '{LIMITED_PASSWORD}'")
    yield PRIVATE_DATABASE
    pg.psql(f"DROP DATABASE {PRIVATE_DATABASE}")
    pg.psql(f"DROP ROLE {LIMITED_ROLE}")


def test_one_query_gives_the_version_and_the_size_of_every_database(
    pg: PgServer, odd_database: str, tmp_path: Path
) -> None:
    superuser = pg.client_env()

    facts = cluster_facts(
        Path(pg.tool("psql")),
        libpq(pg, superuser["PGUSER"], superuser["PGPASSWORD"], tmp_path),
    )

    assert facts.server.major == int(pg.psql("SHOW server_version_num")) // 10000
    for name in (odd_database, NASTY_DATABASE, SECOND_DATABASE):
        quoted = name.replace("'", "''")
        assert facts.sizes[name] == int(pg.psql(f"SELECT pg_database_size('{quoted}')"))


def test_databases_a_user_may_not_connect_to_are_left_out_not_fatal(
    pg: PgServer, private_database: str, tmp_path: Path
) -> None:
    facts = cluster_facts(
        Path(pg.tool("psql")), libpq(pg, LIMITED_ROLE, LIMITED_PASSWORD, tmp_path)
    )

    assert private_database not in facts.sizes
    assert SECOND_DATABASE in facts.sizes


def counting_psql(pg: PgServer, directory: Path) -> tuple[Path, Path]:
    """A client directory whose psql logs each call before running the real one."""
    directory.mkdir()
    calls = directory / "calls"
    (directory / "pg_dump").symlink_to(pg.tool("pg_dump"))
    psql = directory / "psql"
    psql.write_text(f'#!/bin/sh\necho call >> "{calls}"\nexec "{pg.tool("psql")}" "$@"\n')
    psql.chmod(0o755)
    return directory / "pg_dump", calls


def test_a_run_asks_the_server_once_whatever_the_number_of_databases(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path
) -> None:
    pg_dump, calls = counting_psql(pg, tmp_path / "clients")
    backup_env.update(
        PG_DATABASES=f"{NASTY_DATABASE} {SECOND_DATABASE} postgres", PG_DUMP_PATH=str(pg_dump)
    )

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert len(s3.keys(bucket)) == 3
    assert calls.read_text().count("call") == 1
