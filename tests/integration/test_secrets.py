"""Secrets never reach process arguments, child environments or output."""

import subprocess
from pathlib import Path

from tests.support.pgserver import PgServer
from tests.support.procscan import watch_moonflower
from tests.support.runner import (
    RUN_TIMEOUT_SECONDS,
    clean_environment,
    moonflower_command,
    run_moonflower,
)
from tests.support.s3server import SECRET_KEY
from tests.support.slowdump import fake_pg_dump

PG_PASSWORD = "pg s3cr3t 'quoted' $HOME \"x\""


def test_no_secret_in_any_argv_child_environment_or_output(
    pg: PgServer,
    backup_env: dict[str, str],
) -> None:
    quoted = PG_PASSWORD.replace("'", "''")
    pg.psql(
        'DROP ROLE IF EXISTS "backup operator"; '
        f"CREATE ROLE \"backup operator\" LOGIN SUPERUSER PASSWORD '{quoted}'"
    )
    backup_env["PG_USER"] = "backup operator"
    backup_env["PG_PASSWORD"] = PG_PASSWORD

    watch = watch_moonflower(backup_env, [PG_PASSWORD, SECRET_KEY])

    assert watch.returncode == 0, watch.stderr.decode()
    assert "pg_dump" in watch.programs_seen, "the scan never saw pg_dump, so it proved nothing"
    assert watch.leaks == []
    for secret in (PG_PASSWORD, SECRET_KEY):
        assert secret.encode() not in watch.stdout + watch.stderr


def test_secrets_in_error_messages_are_masked(backup_env: dict[str, str]) -> None:
    """A password that shows up in a server error is masked in the output."""
    backup_env["PG_PASSWORD"] = "wrong-but-secret-value"
    backup_env["PG_DATABASES"] = "wrong-but-secret-value"

    result = subprocess.run(
        moonflower_command(),
        env=clean_environment(backup_env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )

    assert result.returncode == 1
    assert "wrong-but-secret-value" not in result.stderr + result.stdout
    assert "********" in result.stderr


def test_a_short_password_is_masked_as_a_value_and_never_cut_out_of_words(
    pg: PgServer, backup_env: dict[str, str], tmp_path: Path
) -> None:
    """The password `the`: masked where it is a value (the password file a broken pg_dump
    prints), while the words around it stay as they are, so no mask points at it."""
    talkative = fake_pg_dump(
        tmp_path,
        'cat "$PGPASSFILE" >&2\necho "pg_dump: the server is older than the other" >&2\nexit 1\n',
    )
    pg.psql(
        "DROP ROLE IF EXISTS short_password; "
        "CREATE ROLE short_password LOGIN SUPERUSER PASSWORD 'the'"
    )
    env = {
        **backup_env,
        "PG_USER": "short_password",
        "PG_PASSWORD": "the",
        "PG_DUMP_PATH": str(talkative),
    }

    result = run_moonflower(env=env)

    assert result.returncode == 1
    assert "*:*:*:*:********" in result.stderr
    assert "*:*:*:*:the" not in result.stderr
    assert "the server is older than the other" in result.stderr
