"""The monitoring settings, the size check's rule and the status server's token check."""

import base64
from pathlib import Path

import pendulum
import pytest

from moonflower.config.loader import load_config
from moonflower.core.errors import ConfigError
from moonflower.logical.size_check import size_drop
from moonflower.reporting.server import token_matches
from moonflower.storage.store_record import record_store
from tests.support.settings import REQUIRED

TOKEN = "a-long-enough-metrics-token"


def problems_with(**settings: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config({**REQUIRED, **settings})
    return caught.value.problems


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"METRICS_ADDRESS": "0.0.0.0:9187"}, "METRICS_TOKEN: required when METRICS_ADDRESS"),
        ({"METRICS_ADDRESS": ":9187"}, "METRICS_TOKEN: required when METRICS_ADDRESS"),
        ({"METRICS_ADDRESS": "9187"}, "METRICS_ADDRESS: expected host:port"),
        ({"METRICS_ADDRESS": "example.org:9187"}, 'METRICS_ADDRESS: "example.org" is not an IP'),
        ({"METRICS_ADDRESS": "127.0.0.1:99999"}, "METRICS_ADDRESS: "),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN: use at least 16 characters"),
        ({"METRICS_TEXTFILE": "/tmp/moonflower.txt"}, "METRICS_TEXTFILE: /tmp/moonflower.txt:"),
        ({"METRICS_TEXTFILE": "/no/such/dir/m.prom"}, "METRICS_TEXTFILE: /no/such/dir is not"),
        ({"METRICS_PUSHGATEWAY": "ftp://gateway"}, "METRICS_PUSHGATEWAY: expected an http"),
        ({"NOTIFY_URLS": "slak://token/channel"}, "NOTIFY_URLS: URL 1 is not one Apprise"),
        ({"NOTIFY_URLS": "json://127.0.0.1/x nonsense"}, "NOTIFY_URLS: URL 2 is not one"),
        ({"NOTIFY_ON": "sometimes"}, "NOTIFY_ON: expected one of failure, always"),
        ({"BACKUP_SIZE_DROP": "panic"}, "BACKUP_SIZE_DROP: expected one of warn, fail, off"),
        ({"BACKUP_SIZE_DROP_THRESHOLD": "150%"}, "BACKUP_SIZE_DROP_THRESHOLD: expected a share"),
        ({"BACKUP_SIZE_DROP_THRESHOLD": "half"}, "BACKUP_SIZE_DROP_THRESHOLD: expected a share"),
        ({"METRICS_ADRESS": "127.0.0.1:1"}, "METRICS_ADRESS: not a Moonflower setting; did you"),
    ],
)
def test_bad_monitoring_settings(settings: dict[str, str], message: str) -> None:
    [problem] = problems_with(**settings)

    assert problem.startswith(message)


def test_a_bad_notify_url_is_not_repeated_in_the_error() -> None:
    [problem] = problems_with(NOTIFY_URLS="slak://xoxb-secret-token-1234567890/chan")

    assert "xoxb-secret-token" not in problem


def test_good_monitoring_settings(tmp_path: Path) -> None:
    config = load_config(
        {
            **REQUIRED,
            "METRICS_ADDRESS": "[::]:9187",
            "METRICS_TOKEN": TOKEN,
            "METRICS_TEXTFILE": str(tmp_path / "moonflower.prom"),
            "NOTIFY_URLS": "json://127.0.0.1:8080/x\nmailto://127.0.0.1:25?from=m@example.org&to=a@example.org",
            "NOTIFY_ON": "always",
            "BACKUP_SIZE_DROP_THRESHOLD": "30%",
        }
    ).monitoring

    assert (config.metrics_host, config.metrics_port) == ("::", 9187)
    assert len(config.notify_urls) == 2
    assert config.size_drop_threshold == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("size", "previous", "flagged"),
    [
        (100, [], False),
        (49, [100], True),
        (50, [100], False),
        (40, [100, 10, 100, 100, 1000], True),  # the median, not the mean or the last
        (60, [100, 10, 100, 100, 1000], False),
        (0, [0, 0], False),
    ],
)
def test_the_size_drop_rule(size: int, previous: list[int], flagged: bool) -> None:
    assert (size_drop(size, previous, 0.5) is not None) == flagged


def test_the_token_as_bearer_or_basic_password() -> None:
    basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()

    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"Basic {basic}", TOKEN)
    assert not token_matches("Bearer wrong", TOKEN)
    assert not token_matches("Basic !!!", TOKEN)
    assert not token_matches("", TOKEN)


def test_the_alert_rules_use_only_metrics_moonflower_exports(tmp_path: Path) -> None:
    import re

    import yaml
    from prometheus_client import CollectorRegistry, generate_latest

    from moonflower.reporting.metrics import StateCollector
    from moonflower.reporting.status_file import StateFile

    state = StateFile(tmp_path)
    state.backups_recorded(
        [
            {
                "database": "app",
                "time": "2026-11-27T01:00:00+00:00",
                "ok": True,
                "size": 10,
                "seconds": 1.5,
                "key": "k",
                "encrypted": False,
                "size_drop": None,
                "error": None,
            }
        ],
        {"runs": 1},
    )
    state.next_run(pendulum.now("UTC").add(hours=1))
    state.wal_stream(
        {
            "running": True,
            "waiting_bytes": 0,
            "last_archived_at": "2026-11-27T01:00:00+00:00",
            "slot_lag_bytes": 0,
        }
    )
    state.job_finished("basebackup", ok=True)
    record_store(tmp_path, "offsite", optional=True, what="WAL x", error="refused")
    registry = CollectorRegistry()
    registry.register(StateCollector(state, None))
    exported = set(
        re.findall(r"^(moonflower_\w+?)(?:\{| )", generate_latest(registry).decode(), re.M)
    )
    rules = yaml.safe_load(
        (Path(__file__).parents[3] / "config" / "moonflower-alerts.yml").read_text()
    )
    used = {
        name
        for rule in rules["groups"][0]["rules"]
        for name in re.findall(r"moonflower_\w+", rule["expr"])
    }

    assert used
    assert used <= exported


def test_commands_that_do_not_notify_check_only_the_form_of_the_urls() -> None:
    unknown_scheme = {**REQUIRED, "NOTIFY_URLS": "slak://token/channel"}

    config = load_config(unknown_scheme, notifying=False)

    assert config.monitoring.notify_urls == ("slak://token/channel",)
    with pytest.raises(ConfigError):
        load_config({**REQUIRED, "NOTIFY_URLS": "not a url"}, notifying=False)
