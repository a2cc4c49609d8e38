"""Clusters: several PostgreSQL servers in one configuration, each inheriting what it does
not set, under a path of its own."""

from pathlib import Path

import pytest

from moonflower.config.loader import load_config
from moonflower.core.errors import ConfigError
from tests.support.settings import REQUIRED

S3_ONLY = {key: value for key, value in REQUIRED.items() if not key.startswith("PG_")}


def problems_of(environ: dict[str, str], config_path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config({**S3_ONLY, **environ}, config_path, notifying=False)
    return raised.value.problems


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "moonflower.toml"
    path.write_text(text)
    return path


TWO = """
[postgres]
user = "backup"
password = "cluster-shared-password"
databases = ["app"]

[retention]
keep_daily = 7

[cluster.production]
host = "db1.internal"

[cluster.side-project]
host = "db2.internal"
port = 5433
databases = ["app", "wiki"]
schedule = "30 2 * * *"

[cluster.side-project.retention]
keep_daily = 3
"""


def test_each_cluster_inherits_what_it_does_not_set_under_a_path_of_its_own(
    tmp_path: Path,
) -> None:
    config = load_config(
        {**S3_ONLY, "S3_PATH": "nightly", "SCHEDULE": "0 1 * * *"},
        toml(tmp_path, TWO),
        notifying=False,
    )
    production, side = config.clusters
    assert (production.cluster, side.cluster) == ("production", "side-project")
    assert production.postgres.host == "db1.internal"
    assert production.postgres.user == side.postgres.user == "backup"
    assert production.postgres.databases == ("app",)
    assert side.postgres.databases == ("app", "wiki")
    assert side.postgres.port == 5433
    assert production.s3.prefix == "nightly/production"
    assert side.s3.prefix == "nightly/side-project"
    assert production.s3.retention.daily == 7
    assert side.s3.retention.daily == 3
    assert production.schedule is not None
    assert side.schedule is not None
    assert production.schedule.expression == "0 1 * * *"
    assert side.schedule.expression == "30 2 * * *"


def test_the_environment_names_clusters_too_and_beats_the_file(tmp_path: Path) -> None:
    config = load_config(
        {
            **S3_ONLY,
            "PG_USER": "backup",
            "PG_PASSWORD": "cluster-test-password",
            "PG_DATABASES": "app",
            "CLUSTER_REPORTING_PG_HOST": "db3.internal",
            "CLUSTER_SIDE_PROJECT_PG_PORT": "6543",
            "CLUSTER_SIDE_PROJECT_PG_HOST": "db2.internal",
        },
        toml(tmp_path, '[cluster.side-project]\nport = 5433\nhost = "x"\n'),
        notifying=False,
    )
    names = [cluster.cluster for cluster in config.clusters]
    assert names == ["side-project", "reporting"]
    side, reporting = config.clusters
    assert side.postgres.port == 6543
    assert side.postgres.host == "db2.internal"
    assert reporting.postgres.host == "db3.internal"
    assert reporting.s3.prefix == "reporting"


def test_without_clusters_nothing_changes() -> None:
    config = load_config({**REQUIRED, "S3_PATH": "nightly"}, notifying=False)
    assert config.clusters == ()
    assert config.cluster is None
    assert config.s3.prefix == "nightly"


def test_a_cluster_setting_names_itself_in_its_errors(tmp_path: Path) -> None:
    problems = problems_of(
        {
            "PG_USER": "backup",
            "PG_PASSWORD": "cluster-test-password",
            "PG_DATABASES": "app",
            "CLUSTER_PROD_PG_HOST": "db1",
            "CLUSTER_PROD_PG_PORT": "not-a-port",
        }
    )
    assert any(problem.startswith("CLUSTER_PROD_PG_PORT: ") for problem in problems), problems


def test_a_cluster_missing_a_required_setting_is_named(tmp_path: Path) -> None:
    problems = problems_of(
        {"PG_USER": "u", "PG_PASSWORD": "cluster-test-password", "CLUSTER_PROD_PG_HOST": "db1"}
    )
    assert "PG_DATABASES: required, not set" in problems


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("CLUSTER_PROD_PG_HSOT", "did you mean CLUSTER_PROD_PG_HOST?"),
        ("CLUSTER_PROD_SCHEDUEL", "did you mean CLUSTER_PROD_SCHEDULE?"),
        ("CLUSTER_PROD_S3_BUCKET", "not a Moonflower setting"),
    ],
)
def test_typos_in_cluster_variables_are_refused(variable: str, hint: str) -> None:
    problems = problems_of(
        {
            "PG_USER": "u",
            "PG_PASSWORD": "cluster-test-password",
            "PG_DATABASES": "app",
            "CLUSTER_PROD_PG_HOST": "db1",
            variable: "x",
        }
    )
    assert any(problem.startswith(f"{variable}: ") and hint in problem for problem in problems)


def test_other_tools_cluster_variables_are_left_alone() -> None:
    config = load_config({**REQUIRED, "CLUSTER_NAME": "k8s-east", "CLUSTER_DOMAIN": "x"})
    assert config.clusters == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[cluster.prod]\nhots = "db1"\n',
            "unknown key 'hots' in [cluster.prod]; did you mean 'host'?",
        ),
        ("[cluster.prod.wal]\nstrem = true\n", "unknown key 'strem' in [cluster.prod.wal]"),
        ('[cluster.prod]\nbucket = "b"\n', "unknown key 'bucket' in [cluster.prod]"),
        ('[cluster.Prod]\nhost = "db1"\n', "[cluster.Prod]: a cluster's name is lower-case"),
        (
            '[cluster.a]\nhost = "1"\npath = "x"\n[cluster.b]\nhost = "2"\npath = "x/y"\n',
            "[cluster.a] and [cluster.b]: the same S3 path or one inside the other",
        ),
    ],
)
def test_bad_cluster_tables_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    shared = '[postgres]\nuser = "u"\npassword = "cluster-test-password"\ndatabases = ["app"]\n'
    problems = problems_of({}, toml(tmp_path, shared + text))
    assert any(problem in found for found in problems), problems


def test_cluster_secrets_are_masked(tmp_path: Path) -> None:
    from moonflower.core.redact import redactor

    secret = tmp_path / "pw"
    secret.write_text("cluster-only-password-value\n")
    load_config(
        {
            **S3_ONLY,
            "PG_USER": "u",
            "PG_DATABASES": "app",
            "PG_PASSWORD": "cluster-test-password",
            "CLUSTER_PROD_PG_HOST": "db1",
            "CLUSTER_PROD_PG_PASSWORD_FILE": str(secret),
        },
        notifying=False,
    )
    assert "cluster-only-password-value" not in redactor.mask("x cluster-only-password-value y")


def test_a_cluster_keeps_its_own_key_and_discovery(tmp_path: Path) -> None:
    config = load_config(
        {**S3_ONLY, "ENCRYPTION_PASSPHRASE": "the shared passphrase"},
        toml(
            tmp_path,
            '[postgres]\nuser = "u"\npassword = "cluster-test-password"\ndatabases = ["app"]\n'
            '[cluster.one]\nhost = "db1"\ndatabases = ["*"]\nglobals = true\n'
            '[cluster.two]\nhost = "db2"\n'
            '[cluster.two.encryption]\npassphrase = "the second passphrase"\n',
        ),
        notifying=False,
    )
    one, two = config.clusters
    assert one.postgres.databases == ("*",)
    assert one.postgres.globals is True
    assert two.postgres.globals is False
    assert one.encryption.passphrase == "the shared passphrase"
    assert two.encryption.passphrase == "the second passphrase"
