"""The deployment recipes stay true to the code: systemd units, Kubernetes, Docker, compose."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from moonflower.cli.main import build_parser
from moonflower.config.clusters import CLUSTERS
from moonflower.config.replicas import REPLICAS
from moonflower.config.settings import ALL_SETTINGS

CHECKOUT = Path(__file__).resolve().parents[2]
CONFIG = CHECKOUT / "config"
KNOWN_VARIABLES = (
    {s.env for s in ALL_SETTINGS}
    | {s.env_file for s in ALL_SETTINGS if s.has_file_twin}
    | {"TZ", "MOONFLOWER_CONFIG"}
)
UNITS = ["moonflower.service", "moonflower-backup.service", "moonflower-backup.timer"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_units_verify(tmp_path: Path) -> None:
    for unit in UNITS:
        text = (CONFIG / unit).read_text().replace("/opt/moonflower", str(CHECKOUT))
        (tmp_path / unit).write_text(text)

    result = subprocess.run(
        ["systemd-analyze", "verify", *UNITS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_systemd_units_use_real_commands_and_variables() -> None:
    for unit in ("moonflower.service", "moonflower-backup.service"):
        text = (CONFIG / unit).read_text()
        [command] = re.findall(r"^ExecStart=/opt/moonflower/bin/moonflower (.+)$", text, re.M)
        build_parser().parse_args(command.split())
        for name in re.findall(r"\b([A-Z][A-Z0-9_]+)=", text):
            if name.isupper() and "_" in name:
                assert name in KNOWN_VARIABLES, f"{unit} sets unknown {name}"


def test_kubernetes_cronjob_matches_the_cli_and_settings() -> None:
    documents = list(yaml.safe_load_all((CONFIG / "kubernetes" / "cronjob.yaml").read_text()))
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    cron_job = next(d for d in documents if d["kind"] == "CronJob")

    assert set(config_map["data"]) <= KNOWN_VARIABLES
    assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"
    [container] = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    build_parser().parse_args(container["args"])
    assert {item["name"] for item in container["env"]} <= KNOWN_VARIABLES


def test_compose_and_dockerfile_use_real_names() -> None:
    compose = yaml.safe_load((CHECKOUT / "compose.yaml").read_text())
    assert set(compose["services"]["moonflower"]["environment"]) <= KNOWN_VARIABLES
    dockerfile = (CHECKOUT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/moonflower/bin/moonflower"]' in dockerfile
    assert "scripts/image-install.sh" in dockerfile
    assert '"health"]' in dockerfile
    for name in re.findall(r"^\s+([A-Z][A-Z_]+)=", dockerfile, re.M):
        assert name in KNOWN_VARIABLES | {"PG_CLIENT_VERSION", "PYTHONDONTWRITEBYTECODE", "LANG"}


def test_the_env_example_only_names_real_settings() -> None:
    for line in (CONFIG / "moonflower.env").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            name = match.group(1)
            prefixed = REPLICAS.name_in(name) or CLUSTERS.name_in(name)
            assert name in KNOWN_VARIABLES or prefixed is not None, line
