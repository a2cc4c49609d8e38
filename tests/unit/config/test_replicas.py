"""Replicas in the configuration: names, inheritance from the primary, typos, secrets."""

from pathlib import Path

import pytest

from moonflower.config.loader import load_config
from moonflower.core.errors import ConfigError
from moonflower.core.redact import redactor
from tests.support.settings import REQUIRED


def problems_of(environ: dict[str, str], config_path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config({**REQUIRED, **environ}, config_path, notifying=False)
    return raised.value.problems


def test_a_replica_takes_what_it_does_not_set_from_the_primary() -> None:
    config = load_config(
        {
            **REQUIRED,
            "S3_PATH": "nightly",
            "BACKUP_KEEP_DAILY": "7",
            "REPLICA_OFFSITE_S3_BUCKET": "far-away",
            "REPLICA_OFFSITE_BACKUP_KEEP_MONTHLY": "24",
        },
        notifying=False,
    )
    [replica] = config.replicas
    assert replica.name == "offsite"
    assert replica.s3.bucket == "far-away"
    assert (replica.s3.endpoint, replica.s3.prefix) == (config.s3.endpoint, "nightly")
    assert replica.s3.access_key == config.s3.access_key
    assert (replica.s3.retention.daily, replica.s3.retention.monthly) == (7, 24)
    assert config.s3.retention.monthly is None  # the primary keeps its own rules
    assert not replica.optional


def test_names_with_underscores_and_the_order_they_are_tried_in(tmp_path: Path) -> None:
    toml = tmp_path / "moonflower.toml"
    toml.write_text('[replica.zeta]\nbucket = "z"\n\n[replica.alpha]\nbucket = "a"\n')
    config = load_config(
        {**REQUIRED, "REPLICA_OFF_SITE_S3_BUCKET": "o", "REPLICA_OFF_SITE_OPTIONAL": "on"},
        toml,
        notifying=False,
    )
    assert [replica.name for replica in config.replicas] == ["zeta", "alpha", "off_site"]
    assert config.replicas[2].optional


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"REPLICA_OFFSITE_S3_BUKET": "x"}, "did you mean REPLICA_OFFSITE_S3_BUCKET?"),
        (
            {"REPLICA_OFFSITE_S3_BUCKET": "x", "REPLICA_OFFSITE_S3_REGON": "y"},
            "did you mean REPLICA_OFFSITE_S3_REGION?",
        ),
        ({"REPLICA_OFFSITE_S3_PATH": "x"}, "REPLICA_OFFSITE_S3_BUCKET: required"),
        (
            {"REPLICA_OFFSITE_S3_BUCKET": "x", "REPLICA_OFFSITE_S3_SECRET_KEY": "s"},
            "REPLICA_OFFSITE_S3_ACCESS_KEY: required",
        ),
        (
            {"REPLICA_OFFSITE_S3_BUCKET": "x", "REPLICA_OFFSITE_S3_GOVERNANCE": "soon"},
            "REPLICA_OFFSITE_S3_GOVERNANCE",
        ),
    ],
)
def test_mistakes_are_named(environ: dict[str, str], expected: str) -> None:
    assert any(expected in problem for problem in problems_of(environ))


def test_a_misspelt_key_in_a_replica_table_is_named(tmp_path: Path) -> None:
    toml = tmp_path / "moonflower.toml"
    toml.write_text('[replica.offsite]\nbucket = "far"\nexpire_in = "1 day"\n')
    [problem] = problems_of({}, toml)
    assert "unknown key 'expire_in' in [replica.offsite]; did you mean 'expires_in'?" in problem


def test_a_replicas_secret_key_is_masked(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("replica-only-secret-value\n")
    load_config(
        {
            **REQUIRED,
            "REPLICA_OFFSITE_S3_BUCKET": "far",
            "REPLICA_OFFSITE_S3_ACCESS_KEY": "AKIAREPLICA",
            "REPLICA_OFFSITE_S3_SECRET_KEY_FILE": str(secret_file),
        },
        notifying=False,
    )
    assert "replica-only-secret-value" not in redactor.mask("x replica-only-secret-value y")


@pytest.mark.parametrize("physical", [{"WAL_STREAM": "on"}, {"BASEBACKUP_SCHEDULE": "@daily"}])
def test_point_in_time_recovery_with_replicas_is_accepted(physical: dict[str, str]) -> None:
    config = load_config(
        {**REQUIRED, "REPLICA_OFFSITE_S3_BUCKET": "far", **physical}, notifying=False
    )
    assert [replica.name for replica in config.replicas] == ["offsite"]
