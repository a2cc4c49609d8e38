"""With several clusters: metrics labelled by cluster, one health for all, a page section
per cluster."""

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from moonflower.config.loader import load_config
from moonflower.config.model import Config
from moonflower.core.state_dir import state_directory
from moonflower.reporting.cluster_health import overall
from moonflower.reporting.metrics import exposition
from moonflower.reporting.page_clusters import page_of
from moonflower.reporting.status_file import StateFile
from tests.support.settings import REQUIRED

CLUSTERS = {
    "CLUSTER_ALPHA_PG_HOST": "db1.internal",
    "CLUSTER_BETA_PG_HOST": "db2.internal",
    "S3_ENDPOINT": "http://127.0.0.1:9",
    "S3_MAX_ATTEMPTS": "1",
}


def clusters(tmp_path: Path) -> list[Config]:
    config = load_config(
        {**REQUIRED, **CLUSTERS, "BACKUP_STATE_DIR": str(tmp_path)}, notifying=False
    )
    return list(config.clusters)


def finished(config: Config, status: int) -> None:
    state = StateFile(state_directory(config.backup))
    state.run_started("2026-12-04T01:00:00+00:00")
    state.run_finished("2026-12-04T01:00:00+00:00", status)


def test_each_cluster_keeps_its_own_state_and_one_failing_makes_all_unhealthy(
    tmp_path: Path,
) -> None:
    alpha, beta = clusters(tmp_path)
    assert state_directory(alpha.backup) != state_directory(beta.backup)
    finished(alpha, 0)
    finished(beta, 0)
    assert overall([alpha, beta]).ok
    finished(beta, 1)
    verdict = overall([alpha, beta])
    assert not verdict.ok
    assert verdict.reason.startswith("cluster beta: the last run")
    assert "alpha" not in verdict.reason


def test_every_sample_carries_its_cluster(tmp_path: Path) -> None:
    alpha, beta = clusters(tmp_path)
    finished(alpha, 0)
    finished(beta, 1)
    families = {
        family.name: family
        for family in text_string_to_metric_families(exposition([alpha, beta]).decode())
    }
    healthy = {
        sample.labels["cluster"]: sample.value for sample in families["moonflower_healthy"].samples
    }
    assert healthy == {"alpha": 1.0, "beta": 0.0}
    for family in families.values():
        assert all("cluster" in sample.labels for sample in family.samples), family.name


def test_the_page_has_a_section_per_cluster_unhealthy_first(tmp_path: Path) -> None:
    alpha, beta = clusters(tmp_path)
    finished(alpha, 0)
    finished(beta, 1)
    page = page_of([alpha, beta]).render()
    assert page.index("<section id=cluster-alpha>") > page.index("<table class=clusters>")
    assert "<section id=cluster-beta>" in page
    table = page[page.index("<table class=clusters>") : page.index("</table>")]
    assert table.index("beta") < table.index("alpha")
    assert page.count("<h1>") == 1


def test_the_notification_names_the_cluster() -> None:
    from moonflower.logical.backup import DatabaseResult, RunReport
    from moonflower.reporting.notify import message

    failed = DatabaseResult("app")
    failed.error = "connection refused"
    title, body = message(RunReport(results=[failed], cluster="beta"), ok=False)
    assert title == "Moonflower backup of cluster beta FAILED"
    assert "app: connection refused" in body
    assert message(RunReport(), ok=True)[0] == "Moonflower backup succeeded"
