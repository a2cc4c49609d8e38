from pathlib import Path

import pytest

from moonflower.config.loader import load_config
from moonflower.core.errors import ConfigError
from tests.support.settings import REQUIRED


def problems_of(environ: dict[str, str], config_path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(environ, config_path)
    return caught.value.problems


def test_defaults_match_the_old_image() -> None:
    config = load_config(REQUIRED)

    assert config.postgres.port == 5432
    assert config.s3.region == "us-west-1"
    assert config.s3.prefix == ""
    assert config.s3.checksum == "when_supported"


def test_every_missing_required_setting_is_listed_at_once() -> None:
    problems = problems_of({})

    for name in ("PG_DATABASES", "PG_HOST", "PG_USER", "PG_PASSWORD", "S3_ENDPOINT", "S3_BUCKET"):
        assert f"{name}: required, not set" in problems


def test_bad_values_name_the_setting_and_never_show_secrets() -> None:
    environ = REQUIRED | {"PG_PORT": "54x2", "S3_ENDPOINT": "s3.example.test"}

    problems = problems_of(environ)

    assert 'PG_PORT: expected a port number, got "54x2"' in problems
    assert any(problem.startswith("S3_ENDPOINT: expected an http") for problem in problems)
    assert not any("pg-secret" in problem or "s3-secret" in problem for problem in problems)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("db1 db2 db3", ("db1", "db2", "db3")),
        ("  db1\t\tdb2 \n ", ("db1", "db2")),
        ("'db1 db2'", ("db1", "db2")),
        ('"db1"', ("db1",)),
        ("db1 db1", ("db1",)),
    ],
)
def test_database_list_parsing(value: str, expected: tuple[str, ...]) -> None:
    assert load_config(REQUIRED | {"PG_DATABASES": value}).postgres.databases == expected


def test_an_empty_database_list_is_an_error() -> None:
    assert "PG_DATABASES: no database names given" in problems_of(REQUIRED | {"PG_DATABASES": "''"})


def test_quoted_values_are_unquoted_once() -> None:
    config = load_config(REQUIRED | {"PG_PASSWORD": "'\"inner\"'", "PG_HOST": '"db"'})

    assert config.postgres.password == '"inner"'
    assert config.postgres.host == "db"


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/", ""), ("", ""), ("/nightly/", "nightly"), ("a//b/", "a/b"), ("nightly", "nightly")],
)
def test_s3_path_slashes_are_ignored(path: str, prefix: str) -> None:
    assert load_config(REQUIRED | {"S3_PATH": path}).s3.prefix == prefix


def test_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    environ = dict(REQUIRED)
    del environ["PG_PASSWORD"]

    config = load_config(environ | {"PG_PASSWORD_FILE": str(secret)})

    assert config.postgres.password == "from-a-file"


def test_secret_and_its_file_together_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("x")

    problems = problems_of(REQUIRED | {"PG_PASSWORD_FILE": str(secret)})

    assert "PG_PASSWORD and PG_PASSWORD_FILE: set only one of them" in problems


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    environ = dict(REQUIRED)
    del environ["S3_SECRET_KEY"]

    problems = problems_of(environ | {"S3_SECRET_KEY_FILE": str(tmp_path / "missing")})

    assert any(problem.startswith("S3_SECRET_KEY_FILE: cannot read") for problem in problems)


def test_quick_start_key_spelling_is_understood_with_a_warning() -> None:
    environ = {k: v for k, v in REQUIRED.items() if not k.startswith("S3_") or "KEY" not in k}

    config = load_config(environ | {"S3_KEY_ID": "AKIAOLD", "S3_ACCESS_KEY": "old-secret"})

    assert config.s3.access_key == "AKIAOLD"
    assert config.s3.secret_key == "old-secret"
    assert any("S3_SECRET_KEY" in warning for warning in config.warnings)


def test_no_keys_means_the_default_credential_chain() -> None:
    environ = {k: v for k, v in REQUIRED.items() if k not in ("S3_ACCESS_KEY", "S3_SECRET_KEY")}

    config = load_config(environ)

    assert config.s3.access_key is None
    assert config.s3.secret_key is None


def test_only_one_key_is_an_error() -> None:
    environ = {k: v for k, v in REQUIRED.items() if k != "S3_SECRET_KEY"}

    assert any(problem.startswith("S3_SECRET_KEY: required") for problem in problems_of(environ))


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "moonflower.toml"
    path.write_text(text)
    return path


def test_toml_is_overridden_by_the_environment(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
[postgres]
databases = ["one", "two words"]
host = "toml-host"
port = 6543
user = "toml-user"
password = "toml-password"

[s3]
endpoint = "http://127.0.0.1:9000"
bucket = "toml-bucket"
path = "/toml/"
""",
    )

    from_toml = load_config({}, path)
    overridden = load_config({"PG_HOST": "env-host", "PG_PORT": "7000"}, path)

    assert from_toml.postgres.databases == ("one", "two words")
    assert from_toml.postgres.port == 6543
    assert from_toml.s3.prefix == "toml"
    assert overridden.postgres.host == "env-host"
    assert overridden.postgres.port == 7000
    assert overridden.postgres.user == "toml-user"


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[postgres]\nhost = "from-file"\n')

    config = load_config(required_without("PG_HOST") | {"MOONFLOWER_CONFIG": str(path)})

    assert config.postgres.host == "from-file"


def required_without(name: str) -> dict[str, str]:
    return {k: v for k, v in REQUIRED.items() if k != name}


def test_flags_override_everything() -> None:
    config = load_config(REQUIRED, None, {"PG_DATABASES": ("databases", ["cli_db"])})

    assert config.postgres.databases == ("cli_db",)


def test_unknown_toml_keys_and_sections_are_errors(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[postgres]\nhots = "typo"\n[s4]\nbucket = "x"\n')

    problems = problems_of(REQUIRED, path)

    assert f"{path}: unknown key 'hots' in [postgres]" in problems
    assert f"{path}: unknown section [s4]" in problems


def test_toml_type_errors_name_the_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[postgres]\nport = "x"\ndatabases = "a b"\n')

    problems = problems_of(required_without("PG_DATABASES"), path)

    assert '[postgres] port: expected a port number, got "x"' in problems


def test_toml_secret_file_twin(tmp_path: Path) -> None:
    secret = tmp_path / "s3secret"
    secret.write_text("file-secret")
    path = write_toml(tmp_path, f'[s3]\nsecret_key_file = "{secret}"\n')

    config = load_config(required_without("S3_SECRET_KEY"), path)

    assert config.s3.secret_key == "file-secret"


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[postgres\n")

    assert any("is not valid TOML" in problem for problem in problems_of(REQUIRED, path))


def test_invalid_webhook_urls_name_the_variable() -> None:
    problems = problems_of(REQUIRED | {"WEBHOOK_FAILURE": "hc-ping.com/uuid"})

    assert "WEBHOOK_FAILURE: expected an http:// or https:// URL" in problems


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("yes", True),
        ("anything", True),
        ("true", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_post_logs_is_on_for_any_value_but_the_usual_offs(value: str, expected: bool) -> None:
    assert load_config(REQUIRED | {"WEBHOOK_POST_LOGS": value}).webhooks.post_logs is expected


def test_spool_dir_must_exist_or_be_makeable(tmp_path: Path) -> None:
    problems = problems_of(REQUIRED | {"BACKUP_SPOOL_DIR": str(tmp_path / "no" / "pe")})

    assert any(problem.startswith("BACKUP_SPOOL_DIR:") for problem in problems)


def test_the_example_config_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[3] / "config" / "moonflower.example.toml"

    config = load_config({}, example)

    assert config.postgres.databases
    assert config.schedule is None, "copying the example must not switch a schedule on"


def test_bad_durations_name_the_setting() -> None:
    problems = problems_of(REQUIRED | {"S3_EXPIRES_IN": "next monday", "S3_GOVERNANCE": "0 days"})

    assert any(p.startswith('S3_EXPIRES_IN: "next monday" is not a duration') for p in problems)
    assert any(p.startswith('S3_GOVERNANCE: "0 days" is zero') for p in problems)


def test_a_lock_longer_than_the_expiry_warns() -> None:
    config = load_config(REQUIRED | {"S3_EXPIRES_IN": "7 days", "S3_GOVERNANCE": "1 month"})

    assert any("S3_GOVERNANCE" in warning and "longer" in warning for warning in config.warnings)


@pytest.mark.parametrize("name", ["BACKUP_SPOOL_DIR", "BACKUP_STATE_DIR", "PG_DUMP_PATH"])
def test_a_path_the_system_refuses_to_look_at_is_a_problem_not_a_crash(name: str) -> None:
    """Found by hypothesis: a name longer than NAME_MAX made stat() raise ENAMETOOLONG."""
    problems = problems_of({**REQUIRED, name: "x" * 5000})

    assert len(problems) == 1
    assert problems[0].startswith(f"{name}: cannot use this path (File name too long): xxx")


def test_a_missing_spool_or_state_directory_is_made_private(tmp_path: Path) -> None:
    """A new host (issue 29, item 3): the directories are made when their parent exists."""
    spool, state = tmp_path / "spool", tmp_path / "state"
    config = load_config(
        {**REQUIRED, "BACKUP_SPOOL_DIR": str(spool), "BACKUP_STATE_DIR": str(state)}
    )
    assert config.backup.spool_dir == spool
    for made in (spool, state):
        assert made.is_dir()
        assert made.stat().st_mode & 0o777 == 0o700


def test_a_deeper_missing_directory_or_a_dangling_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    for path in (tmp_path / "a" / "b", tmp_path / "link"):
        with pytest.raises(ConfigError) as caught:
            load_config({**REQUIRED, "BACKUP_SPOOL_DIR": str(path)})
        assert caught.value.problems[0].startswith("BACKUP_SPOOL_DIR: ")
        assert not (tmp_path / "nowhere").exists()
