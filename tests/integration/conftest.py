"""Fixtures of the point-in-time recovery tests (a source server of its own, and an empty
directory a restored server can run from), and the `slow` mark of the long modules."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer
from tests.support.pitr import empty_restore_dir


@pytest.fixture
def source() -> Iterator[PgServer]:
    with PgServer() as server:
        server.create_database("app")
        server.psql("CREATE TABLE ledger (n int PRIMARY KEY, committed timestamptz)", "app")
        yield server


@pytest.fixture
def restore_dir() -> Iterator[Path]:
    """An empty directory the server's user can reach (and own, when tests run as root)."""
    with empty_restore_dir() as target:
        yield target


SLOW_MODULES = frozenset(
    {
        "test_archive_writer",
        "test_faults",
        "test_interrupt",
        "test_pid_namespaces",
        "test_pitr_archive",
        "test_clusters",
        "test_pitr_replicas",
        "test_pitr_restore",
        "test_pitr_retention",
        "test_pitr_streams",
        "test_pitr_targets",
        "test_pitr_untrusted",
        "test_scheduled",
        "test_seaweedfs",
        "test_streaming",
        "test_time_limits",
    }
)
"""Modules whose tests stream WAL, recover clusters, wait out schedules and time limits, or
inject faults: `pytest -m "not slow"` leaves them out for a fast subset."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
