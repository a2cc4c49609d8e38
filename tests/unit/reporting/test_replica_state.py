"""Each replica's last store, as `health`, `status`, the metrics and the page show it."""

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from moonflower.config.loader import load_config
from moonflower.reporting.health import health
from moonflower.reporting.metrics import StateCollector
from moonflower.reporting.page import PageSource
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import Destination
from moonflower.storage.store_record import last_stores, record_store
from tests.support.settings import REQUIRED


def a_good_run(state: StateFile) -> None:
    state.run_started("2026-12-04T01:00:00+00:00")
    state.run_finished("2026-12-04T01:00:00+00:00", 0)


def test_a_failure_keeps_the_last_success_and_a_success_clears_the_failure(
    tmp_path: Path,
) -> None:
    record_store(tmp_path, "offsite", optional=False, what="WAL a")
    first = last_stores(tmp_path)["offsite"]["last_success"]
    record_store(tmp_path, "offsite", optional=False, what="WAL b", error="503 SlowDown")
    failed = last_stores(tmp_path)["offsite"]
    assert failed["ok"] is False
    assert failed["last_success"] == first
    assert failed["error"] == "503 SlowDown"
    record_store(tmp_path, "offsite", optional=False, what="WAL c")
    assert last_stores(tmp_path)["offsite"]["ok"] is True


def test_a_damaged_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "moonflower-destinations-0.json").write_text("not json")
    record_store(tmp_path, "far", optional=True, what="x")
    for path in tmp_path.glob("moonflower-destinations-*.json"):
        path.write_text('{"far": {"ok": "yes"}, "near": []}')
    assert last_stores(tmp_path) == {}


@pytest.mark.parametrize("optional", [False, True])
def test_a_required_replica_that_failed_makes_health_unhealthy_an_optional_one_does_not(
    tmp_path: Path, optional: bool
) -> None:
    state = StateFile(tmp_path)
    a_good_run(state)
    assert health(state.shown()).ok
    record_store(tmp_path, "offsite", optional=optional, what="WAL 0001", error="refused")
    verdict = health(state.shown())
    assert verdict.ok is optional
    if not optional:
        assert "replica offsite" in verdict.reason
        assert "refused" in verdict.reason


def test_the_metrics_carry_the_destination(tmp_path: Path) -> None:
    state = StateFile(tmp_path)
    record_store(tmp_path, "offsite", optional=False, what="WAL", error="refused")
    record_store(tmp_path, "cold", optional=True, what="WAL")
    registry = CollectorRegistry()
    registry.register(StateCollector(state, None))
    text = generate_latest(registry).decode()
    assert (
        'moonflower_destination_last_store_result{destination="offsite",optional="false"} 0.0'
        in text
    )
    assert (
        'moonflower_destination_last_store_result{destination="cold",optional="true"} 1.0' in text
    )
    assert 'moonflower_destination_last_success_timestamp_seconds{destination="cold"}' in text


def test_the_page_shows_each_replica_and_escapes_what_it_recorded(tmp_path: Path) -> None:
    config = load_config(
        {
            **REQUIRED,
            "BACKUP_STATE_DIR": str(tmp_path),
            "S3_ENDPOINT": "http://127.0.0.1:9",
            "S3_MAX_ATTEMPTS": "1",
            "REPLICA_OFFSITE_S3_BUCKET": "far",
        },
        notifying=False,
    )
    state = StateFile(tmp_path)
    record_store(tmp_path, "offsite", optional=False, what="WAL", error="<script>x</script>")
    page = PageSource(config, Destination(config.s3), state).render()
    assert "replica offsite" in page
    assert "&lt;script&gt;" in page
    assert "<script>" not in page
