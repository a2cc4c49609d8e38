"""The replication side of the server: whether the user may stream WAL, and the physical
replication slot that keeps the server from removing WAL Moonflower has not received."""

from pathlib import Path

from moonflower.config.model import PostgresConfig
from moonflower.core.errors import ConfigError
from moonflower.core.logs import log
from moonflower.postgres.clients import any_psql, find_client
from moonflower.postgres.queries import may_replicate, psql_query, server_version

CREATE_SLOT = (
    "SELECT 'created' FROM pg_catalog.pg_create_physical_replication_slot('{slot}', true) "
    "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '{slot}')"
)
"""The slot reserves WAL from the moment it is made (pg_receivewal --create-slot would only
from its first connection). The name is checked (`[a-z0-9_]`) when the settings are read."""


def require_replication(pg: PostgresConfig, psql: Path, environment: dict[str, str]) -> None:
    """A ConfigError (exit 2, before anything starts) when the user may not stream WAL."""
    if not may_replicate(psql, environment):
        raise ConfigError(
            [
                f"PG_USER: {pg.user} lacks the REPLICATION attribute that WAL_STREAM needs "
                f"(ALTER ROLE {pg.user} REPLICATION)"
            ]
        )


def ensure_slot(pg: PostgresConfig, slot: str, environment: dict[str, str]) -> Path:
    """Check the REPLICATION attribute (a ConfigError, exit 2, when missing) and create the
    slot unless it exists; the pg_receivewal to stream with."""
    psql = any_psql(pg.pg_dump_path)
    server = server_version(psql, environment)
    require_replication(pg, psql, environment)
    if psql_query(psql, environment, CREATE_SLOT.format(slot=slot)) == "created":
        log.info("created the replication slot %s: the WAL chain starts here", slot)
    return find_client("pg_receivewal", server, pg.pg_dump_path).path


SLOT_LAG = (
    "SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_receive_lsn() "
    "ELSE pg_catalog.pg_current_wal_lsn() END) - restart_lsn "
    "FROM pg_catalog.pg_replication_slots WHERE slot_name = '{slot}'"
)


def slot_lag(pg: PostgresConfig, slot: str, environment: dict[str, str]) -> int | None:
    """Bytes of WAL the server keeps for the slot (written, not yet confirmed received)."""
    psql = any_psql(pg.pg_dump_path)
    answer = psql_query(psql, environment, SLOT_LAG.format(slot=slot))
    try:
        return max(0, int(float(answer)))
    except ValueError:
        return None  # no such slot (yet), or no position


DROP_SLOT = (
    "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
    "WHERE slot_name = '{slot}' AND NOT active"
)


def drop_slot(pg: PostgresConfig, slot: str, environment: dict[str, str]) -> None:
    """Drop a slot whose WAL is gone (invalidated, or pointing at removed WAL), so that
    `ensure_slot` makes a new one where a new chain starts."""
    psql_query(any_psql(pg.pg_dump_path), environment, DROP_SLOT.format(slot=slot))
    log.warning("dropped the replication slot %s after the gap; a new one starts a new chain", slot)
