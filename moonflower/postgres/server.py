"""Administrative SQL on the configured server: does a database exist, create, drop."""

from pathlib import Path

from moonflower.config.model import PostgresConfig
from moonflower.postgres.clients import any_psql
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment
from moonflower.postgres.queries import ServerVersion, psql_query, server_version

DROP_WITH_FORCE_SINCE = 13
USER_TABLES = """
SELECT count(*) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
"""


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class Server:
    def __init__(self, pg: PostgresConfig, password_file: Path) -> None:
        self.pg = pg
        self.password_file = password_file
        self.psql = any_psql(pg.pg_dump_path)

    def environment(self, database: str) -> dict[str, str]:
        return libpq_environment(self.pg, self.password_file, database)

    def query(self, sql: str, database: str = MAINTENANCE_DATABASE) -> str:
        return psql_query(self.psql, self.environment(database), sql)

    def version(self) -> ServerVersion:
        return server_version(self.psql, self.environment(MAINTENANCE_DATABASE))

    def exists(self, name: str) -> bool:
        found = self.query(f"SELECT count(*) FROM pg_database WHERE datname = {sql_literal(name)}")
        return found.strip() == "1"

    def table_count(self, name: str) -> int:
        return int(self.query(USER_TABLES, database=name).strip() or 0)

    def create(self, name: str) -> None:
        self.query(f"CREATE DATABASE {sql_identifier(name)}")

    def drop(self, name: str) -> None:
        force = " WITH (FORCE)" if self.version().major >= DROP_WITH_FORCE_SINCE else ""
        self.query(f"DROP DATABASE IF EXISTS {sql_identifier(name)}{force}")
