"""Bad settings of every kind: one problem each, naming the setting (the loader's side of
"exit 2, nothing runs"; tests/integration/test_cli.py proves the exit status end to end)."""

import pytest

from moonflower.config.loader import load_config
from moonflower.core.errors import ConfigError
from tests.support.settings import REQUIRED

PASSPHRASE = "correct horse battery staple"


def problems_with(**settings: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config({**REQUIRED, **settings})
    return caught.value.problems


@pytest.mark.parametrize("setting", ["S3_EXPIRES_IN", "S3_GOVERNANCE"])
@pytest.mark.parametrize("value", ["next monday", "soon", "0 days", "-3 days"])
def test_bad_durations(setting: str, value: str) -> None:
    [problem] = problems_with(**{setting: value})

    assert problem.startswith(f"{setting}: ")
    assert '"30 days"' in problem


@pytest.mark.parametrize("path", ["../escape", "nightly/../../x", "a/./b"])
def test_s3_paths_cannot_climb_out(path: str) -> None:
    [problem] = problems_with(S3_PATH=path)

    assert problem.startswith("S3_PATH: ")
    assert '"." or ".."' in problem


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"BACKUP_COMPRESSION": "lz4"}, "BACKUP_COMPRESSION: expected one of gzip, zstd, none"),
        (
            {"BACKUP_COMPRESSION_LEVEL": "10"},
            "BACKUP_COMPRESSION_LEVEL: expected a whole number from 1 to 9",
        ),
        (
            {"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "22"},
            "BACKUP_COMPRESSION_LEVEL: expected a whole number from 1 to 19",
        ),
        ({"BACKUP_FORMAT": "tar"}, "BACKUP_FORMAT: expected one of plain, custom"),
        ({"S3_CHECKSUM": "always"}, "S3_CHECKSUM: expected one of when_supported, when_required"),
    ],
)
def test_bad_choices(settings: dict[str, str], message: str) -> None:
    [problem] = problems_with(**settings)

    assert problem.startswith(message)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ENCRYPTION_PASSPHRASE": "7 chars"}, "ENCRYPTION_PASSPHRASE: must be at least 8"),
        (
            {"ENCRYPTION_PASSPHRASE": PASSPHRASE, "ENCRYPTION_PUBLIC_KEY": "AAAA"},
            "ENCRYPTION_PASSPHRASE and ENCRYPTION_PUBLIC_KEY: set only one",
        ),
    ],
)
def test_bad_encryption_settings(settings: dict[str, str], message: str) -> None:
    problems = problems_with(**settings)

    assert any(problem.startswith(message) for problem in problems), problems
    assert all(PASSPHRASE not in problem for problem in problems)


def test_an_invalid_schedule_names_the_field() -> None:
    [problem] = problems_with(SCHEDULE="0 25 * * *")

    assert problem.startswith('SCHEDULE: invalid hour field "25"')


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("ENCRYPTION_PASSPRASE", "ENCRYPTION_PASSPHRASE"),
        ("S3_EXPIRE_IN", "S3_EXPIRES_IN"),
        ("PG_DATABASE", "PG_DATABASES"),
        ("S3_BUKET", "S3_BUCKET"),
        ("WEBHOOK_SUCESS", "WEBHOOK_SUCCESS"),
        ("PG_PASSWORD_FIEL", "PG_PASSWORD_FILE"),
    ],
)
def test_a_misspelt_setting_is_an_error_naming_the_nearest(typo: str, meant: str) -> None:
    problems = problems_with(**{typo: "correct horse battery staple"})

    assert f"{typo}: not a Moonflower setting; did you mean {meant}?" in problems
    assert all("correct horse" not in problem for problem in problems)


def test_names_other_software_sets_in_the_same_container_are_left_alone() -> None:
    environ = {**REQUIRED, "PG_MAJOR": "18", "PG_VERSION": "18.1", "PGDATA": "/data", "PATH": "/b"}

    assert load_config(environ).postgres.host == "db.internal"


def test_entry_takes_misspelt_settings_out_of_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A misspelt secret must not reach child processes either."""
    from moonflower.cli.entry import take_settings

    monkeypatch.setenv("ENCRYPTION_PASSPRASE", "still a secret")
    monkeypatch.setenv("SCHEDULE", "@daily")
    monkeypatch.setenv("PG_MAJOR", "18")

    taken = take_settings()

    import os

    assert taken["ENCRYPTION_PASSPRASE"] == "still a secret"
    assert "ENCRYPTION_PASSPRASE" not in os.environ
    assert "SCHEDULE" not in os.environ


@pytest.mark.parametrize("value", ["8000 years", "99999999999999999999 days", "P9999Y"])
@pytest.mark.parametrize("setting", ["S3_EXPIRES_IN", "S3_GOVERNANCE"])
def test_durations_that_overflow_are_refused_up_front(setting: str, value: str) -> None:
    [problem] = problems_with(**{setting: value})

    assert problem.startswith(f"{setting}: ")
    assert "too long" in problem


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://hc-ping.com:99999/uuid", "invalid port"),
        ("https://hc-ping.com/uu id", "spaces or control characters"),
        ("https://user:token-123@hooks.example/x", "holds credentials"),
        ("hc-ping.com/uuid", "expected an http:// or https:// URL"),
    ],
)
def test_webhook_urls_are_checked_without_repeating_them(url: str, message: str) -> None:
    [problem] = problems_with(WEBHOOK_FAILURE=url)

    assert problem.startswith("WEBHOOK_FAILURE: ")
    assert message in problem
    assert "token-123" not in problem


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"S3_ENDPOINT": "https://s3.example.test:70000"}, "S3_ENDPOINT: "),
        ({"S3_ENDPOINT": "https://s3.example.test/?x=1"}, "S3_ENDPOINT: "),
        ({"S3_REGION": "eu central 1"}, "S3_REGION: "),
        ({"S3_REGION": "eu/central"}, "S3_REGION: "),
        ({"S3_PATH": " nightly /x"}, "S3_PATH: "),
        ({"PG_HOST": "db.internal\n"}, "PG_HOST: contains a line break"),
        ({"S3_BUCKET": "back\tups"}, "S3_BUCKET: contains a line break"),
        ({"PG_PASSWORD": "pass\x00word"}, "PG_PASSWORD: contains a line break"),
    ],
)
def test_every_value_is_checked_up_front(settings: dict[str, str], message: str) -> None:
    [problem] = problems_with(**settings)

    assert problem.startswith(message)


def test_lists_may_span_lines() -> None:
    config = load_config({**REQUIRED, "PG_DATABASES": "app\nbilling\n\treports"})

    assert config.postgres.databases == ("app", "billing", "reports")


def test_a_value_and_its_file_both_set_is_one_problem(tmp_path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")

    problems = problems_with(PG_PASSWORD_FILE=str(secret))

    assert problems == ["PG_PASSWORD and PG_PASSWORD_FILE: set only one of them"]


def test_an_unreadable_config_file_is_the_only_problem(tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({}, tmp_path / "missing.toml")

    assert caught.value.problems == [f"--config: file {tmp_path / 'missing.toml'} does not exist"]


def test_globals_without_encryption_warn_about_password_hashes() -> None:
    plain = load_config({**REQUIRED, "PG_GLOBALS": "true"})
    encrypted = load_config(
        {**REQUIRED, "PG_GLOBALS": "true", "ENCRYPTION_PASSPHRASE": "long enough passphrase"}
    )

    assert any(warning.startswith("PG_GLOBALS: ") for warning in plain.warnings)
    assert not any(warning.startswith("PG_GLOBALS: ") for warning in encrypted.warnings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"BACKUP_KEEP_DAILY": "-1"}, "BACKUP_KEEP_DAILY: expected a whole number from 0"),
        ({"BACKUP_KEEP_WEEKLY": "seven"}, "BACKUP_KEEP_WEEKLY: expected a whole number from 0"),
        ({"BACKUP_KEEP_LAST": "1.5"}, "BACKUP_KEEP_LAST: expected a whole number from 0"),
        ({"BACKUP_KEEP_TIMEZONE": "Mars/Olympus"}, 'BACKUP_KEEP_TIMEZONE: "Mars/Olympus" is not'),
        ({"BACKUP_KEEP_TIMEZONE": "../../etc/passwd"}, "BACKUP_KEEP_TIMEZONE: "),
        ({"BACKUP_PRUNE_MAX_DELETE": "150"}, "BACKUP_PRUNE_MAX_DELETE: expected a whole number"),
        ({"BACKUP_KEEP_DAYLY": "7"}, "BACKUP_KEEP_DAYLY: not a Moonflower setting; did you mean"),
    ],
)
def test_bad_keep_rules(settings: dict[str, str], message: str) -> None:
    [problem] = problems_with(**settings)

    assert problem.startswith(message)


def test_keep_rules_in_toml(tmp_path) -> None:
    path = tmp_path / "moonflower.toml"
    path.write_text(
        '[retention]\nkeep_daily = 7\nkeep_monthly = 0\ntimezone = "Europe/Berlin"\n'
        "prune_max_delete = 20\n"
    )

    retention = load_config(REQUIRED, path).s3.retention

    assert retention.rules == {"daily": 7, "monthly": 0}
    assert retention.timezone == "Europe/Berlin"
    assert retention.max_delete_percent == 20


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("BACKUP_KEEP_LAST", "\u0663"),
        ("BACKUP_KEEP_DAILY", "\uff13"),
        ("PG_PORT", "\u0665\u0664\u0663\u0662"),
        ("S3_EXPIRES_IN", "\u0663 days"),
        ("S3_EXPIRES_IN", "P\u0663D"),
        ("BACKUP_TIMEOUT", "\u0663 hours"),
        ("SCHEDULE", "\u0663 * * * *"),
        ("WAL_PUSH_INTERVAL", "\u0663"),
        ("WAL_SPOOL_LIMIT", "\u0663 GiB"),
        ("BACKUP_SIZE_DROP_THRESHOLD", "\u0660.\u0665"),
        ("METRICS_ADDRESS", "127.0.0.1:\u0669\u0661\u0668\u0667"),
    ],
)
def test_numbers_take_ascii_digits_only(setting: str, value: str) -> None:
    """Issue 28, item 3: an Arabic-Indic three is not 3 for Moonflower, whatever int() says."""
    [problem] = problems_with(**{setting: value})
    assert problem.startswith(f"{setting}: ")


@pytest.mark.parametrize("name", ["SCHEDUEL", "SCHEDUL", "SCEDULE", "SE_BUCKET", "S3BUCKET"])
def test_a_typo_without_a_prefix_is_refused_with_the_setting_it_meant(name: str) -> None:
    """Issue 28, item 1: `SCHEDUEL` would make `run` a one-shot backup."""
    problems = problems_with(**{name: "0 1 * * *"})
    assert problems
    assert problems[0].startswith(f"{name}: not a Moonflower setting; did you mean ")


@pytest.mark.parametrize(
    "name",
    [
        "HOME",
        "PATH",
        "HOSTNAME",
        "TZ",
        "PGHOST",
        "PGPASSWORD",
        "PGDATA",
        "POSTGRES_PASSWORD",
        "SCHEDULER_ENABLED",
        "LANG",
        "KUBERNETES_SERVICE_HOST",
        "AWS_REGION",
        "SHLVL",
    ],
)
def test_other_softwares_variables_are_left_alone(name: str) -> None:
    from moonflower.config.loader import unknown_variables

    assert unknown_variables({name: "x"}) == []
