"""bin/moonflower as a user meets it: help, version, configuration errors."""

import json
from pathlib import Path

from moonflower import __version__
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server


def test_every_missing_setting_in_one_go_exit_2_no_traceback() -> None:
    result = run_moonflower(env={})

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    for name in ("PG_DATABASES", "PG_HOST", "PG_USER", "PG_PASSWORD", "S3_ENDPOINT", "S3_BUCKET"):
        assert f"moonflower: {name}: required, not set" in lines


def test_bad_configuration_writes_nothing_to_s3(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["PG_PORT"] = "54x2"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 2
    assert 'moonflower: PG_PORT: expected a port number, got "54x2"' in result.stderr
    assert s3.keys(bucket) == []


def test_config_file_and_flags(
    s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "moonflower.toml"
    config.write_text('[postgres]\ndatabases = ["no_such_db"]\n[s3]\npath = "from-toml"\n')
    del backup_env["PG_DATABASES"]
    del backup_env["S3_PATH"]

    result = run_moonflower("--config", str(config), "backup", "second", env=backup_env)

    assert result.returncode == 0, result.stderr
    [key] = s3.keys(bucket)
    assert key.startswith("from-toml/second_")


def test_help_and_version() -> None:
    help_result = run_moonflower("--help", env={})
    version_result = run_moonflower("--version", env={})

    assert help_result.returncode == 0
    assert "backup" in help_result.stdout
    assert "exit status" in help_result.stdout
    assert version_result.stdout.strip() == f"moonflower {__version__}"


def test_quick_start_spelling_warns_and_works(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["S3_KEY_ID"] = backup_env.pop("S3_ACCESS_KEY")
    backup_env["S3_ACCESS_KEY"] = backup_env.pop("S3_SECRET_KEY")
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "S3_SECRET_KEY=<secret>" in result.stderr
    assert len(s3.keys(bucket)) == 1


def test_global_options_work_after_the_command_too(
    s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "moonflower.toml"
    config.write_text('[s3]\npath = "after-the-command"\n')
    del backup_env["S3_PATH"]
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(
        "backup", "--config", str(config), "--log-format", "json", env=backup_env
    )

    assert result.returncode == 0, result.stderr
    assert [key.split("/")[0] for key in s3.keys(bucket)] == ["after-the-command"]
    assert result.stderr.lstrip().startswith("{")
    [summary_line] = result.stdout.splitlines()
    summary = json.loads(summary_line)
    assert summary["ok"] is True
    assert [entry["database"] for entry in summary["databases"]] == ["second"]
    assert summary["databases"][0]["key"].startswith("after-the-command/second_")


def test_without_its_packages_it_says_how_to_install_not_a_traceback() -> None:
    """`python -S` leaves site-packages out, as a fresh clone without a virtualenv would."""
    import subprocess
    import sys

    from tests.support.runner import CHECKOUT

    program = (
        f"import sys; sys.path.insert(0, {str(CHECKOUT)!r}); "
        "from moonflower.cli.entry import run; run()"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", program, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "make venv" in result.stderr


def test_a_misspelt_schedule_stops_before_anything(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """Issue 28, item 1: SCHEDUEL used to do a one-shot backup and exit 0."""
    result = run_moonflower(env={**backup_env, "SCHEDUEL": "0 1 * * *"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "moonflower: SCHEDUEL: not a Moonflower setting; did you mean SCHEDULE?"
    ]
    assert s3.keys(bucket) == []
