"""Administrative SQL on the configured server: does a database exist, create, drop."""

from pathlib import Path

from moonflower.config.model import PostgresConfig
from moonflower.postgres.clients import any_psql
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment
from moonflower.postgres.queries import ServerVersion, psql_query, server_version

DROP_WITH_FORCE_SINCE = 13
USER_NAMESPACE = (
    "nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%'"
)
CONTENTS = f"""
WITH user_ns AS (SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE {USER_NAMESPACE})
SELECT 'table', count(*) FROM pg_catalog.pg_class
  WHERE relnamespace IN (SELECT oid FROM user_ns) AND relkind IN ('r', 'p', 'f')
UNION ALL SELECT 'sequence', count(*) FROM pg_catalog.pg_class
  WHERE relnamespace IN (SELECT oid FROM user_ns) AND relkind = 'S'
UNION ALL SELECT 'view', count(*) FROM pg_catalog.pg_class
  WHERE relnamespace IN (SELECT oid FROM user_ns) AND relkind IN ('v', 'm')
UNION ALL SELECT 'function', count(*) FROM pg_catalog.pg_proc
  WHERE pronamespace IN (SELECT oid FROM user_ns)
UNION ALL SELECT 'type', count(*) FROM pg_catalog.pg_type
  WHERE typnamespace IN (SELECT oid FROM user_ns) AND typtype IN ('e', 'd', 'r', 'm')
UNION ALL SELECT 'schema', count(*) FROM user_ns WHERE nspname <> 'public'
UNION ALL SELECT 'large object', count(*) FROM pg_catalog.pg_largeobject_metadata
UNION ALL SELECT 'extension', count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'
"""
"""What makes a database non-empty: anything a restore would merge into."""


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

    def roles(self) -> frozenset[str]:
        """Every role on the server (names travel hex-encoded: any character survives)."""
        output = self.query("SELECT encode(convert_to(rolname, 'UTF8'), 'hex') FROM pg_roles")
        return frozenset(bytes.fromhex(row).decode("utf-8") for row in output.split() if row)

    def contents(self, name: str) -> dict[str, int]:
        """How many user objects of each kind the database holds (only kinds it has)."""
        counts = {}
        for row in self.query(CONTENTS, database=name).splitlines():
            kind, _, number = row.partition("|")
            if number.isdigit() and int(number):
                counts[kind] = int(number)
        return counts

    def create(self, name: str) -> None:
        self.query(f"CREATE DATABASE {sql_identifier(name)}")

    def rename(self, name: str, new_name: str) -> None:
        self.query(f"ALTER DATABASE {sql_identifier(name)} RENAME TO {sql_identifier(new_name)}")

    def drop(self, name: str) -> None:
        force = " WITH (FORCE)" if self.version().major >= DROP_WITH_FORCE_SINCE else ""
        self.query(f"DROP DATABASE IF EXISTS {sql_identifier(name)}{force}")
