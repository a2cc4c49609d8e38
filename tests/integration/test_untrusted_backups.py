"""A backup is untrusted input: whoever can write to the bucket can plant one. Restore and
verify must never run what is in it, and must check it is complete before touching a
database."""

import gzip
import hashlib
import json
import subprocess
from pathlib import Path

import pendulum
import pytest

from moonflower.catalog.keys import timestamp
from tests.support.names import unique_name
from tests.support.pgserver import COMMAND_TIMEOUT_SECONDS, PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server


@pytest.fixture
def key() -> str:
    """Newer than any real backup the test makes, yet within the clock skew S3 tolerates."""
    return f"nightly/second_{timestamp(pendulum.now('UTC').add(minutes=5))}"


TRAILER = "--\n-- PostgreSQL database dump complete\n--\n\n"


def planted_sql(marker: Path, shape: str) -> str:
    """Complete-looking plain SQL that tries to run a shell command through psql."""
    shell = f"\\! touch {marker}\n"
    body = "CREATE TABLE planted (x int);\n"
    if shape == "old tool (no \\restrict)":
        return f"--\n-- PostgreSQL database dump\n--\n\n{body}{shell}{TRAILER}"
    if shape == "after its own \\unrestrict":
        key = "Abc123"
        return (
            f"--\n-- PostgreSQL database dump\n--\n\n\\restrict {key}\n\n{body}"
            f"\\unrestrict {key}\n{shell}\\restrict {key}\n{TRAILER}\\unrestrict {key}\n"
        )
    if shape == "mid-line":
        return f"--\n-- PostgreSQL database dump\n--\n\nSELECT 1; \\! touch {marker}\n{TRAILER}"
    raise AssertionError(shape)


def plant(s3: S3Server, bucket: str, key: str, body: bytes) -> None:
    """An object with a correct checksum in Moonflower's metadata: integrity is no defence."""
    s3.client().put_object(
        Bucket=bucket, Key=key, Body=body, Metadata={"sha256": hashlib.sha256(body).hexdigest()}
    )


def database_exists(pg: PgServer, name: str) -> bool:
    return pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "1"


@pytest.mark.parametrize(
    "shape", ["old tool (no \\restrict)", "after its own \\unrestrict", "mid-line"]
)
@pytest.mark.parametrize("command", ["restore", "verify --restore"])
def test_psql_meta_commands_in_a_backup_never_run(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    tmp_path: Path,
    shape: str,
    command: str,
    key: str,
) -> None:
    marker = tmp_path / "pwned"
    plant(s3, bucket, f"{key}.sql.gz", gzip.compress(planted_sql(marker, shape).encode()))
    target = unique_name("mf_planted")
    arguments = ["restore", "second", "--into", target] if command == "restore" else []
    if command != "restore":
        arguments = ["verify", "--restore", "second"]

    result = run_moonflower(*arguments, env=backup_env)

    assert result.returncode == 1, result.stderr
    assert not marker.exists(), "a meta-command from the backup ran"
    assert "restricted" in result.stderr


def test_a_real_pg_dump_with_its_own_restrict_lines_still_restores(
    pg: PgServer, backup_env: dict[str, str]
) -> None:
    """pg_dump 18 writes \\restrict/\\unrestrict itself: those are taken out, not refused."""
    assert run_moonflower(env={**backup_env, "PG_DATABASES": "second"}).returncode == 0
    target = unique_name("mf_own_restrict")

    result = run_moonflower("restore", "second", "--into", target, env=backup_env)

    assert result.returncode == 0, result.stderr
    assert pg.dump_text(target) == pg.dump_text("second")


@pytest.mark.parametrize("compressed", [True, False])
def test_a_truncated_backup_without_checksum_is_refused_before_the_target_exists(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], compressed: bool, key: str
) -> None:
    dump = subprocess.run(
        [pg.tool("pg_dump"), "--no-password"],
        env=pg.client_env("second"),
        capture_output=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=True,
    ).stdout
    cut = dump[: len(dump) * 2 // 3]
    body, extension = (gzip.compress(cut), ".sql.gz") if compressed else (cut, ".sql")
    s3.client().put_object(Bucket=bucket, Key=f"{key}{extension}", Body=body)
    target = unique_name("mf_cut")

    result = run_moonflower(
        "restore", "second", "--into", target, "--allow-unverified", env=backup_env
    )

    assert result.returncode == 1
    assert "truncated" in result.stderr
    assert not database_exists(pg, target)


def test_drop_existing_keeps_the_live_database_when_the_backup_is_truncated(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], key: str
) -> None:
    live = unique_name("mf_live")
    pg.create_database(live)
    pg.psql("CREATE TABLE precious (x int); INSERT INTO precious VALUES (7);", live)
    plant(s3, bucket, f"{key}.sql.gz", gzip.compress(b"--\n-- PostgreSQL database dump\n--\n"))

    result = run_moonflower("restore", "second", "--into", live, "--drop-existing", env=backup_env)

    assert result.returncode == 1
    assert "truncated" in result.stderr
    assert pg.psql("SELECT x FROM precious", live) == "7"


def test_intact_globals_pass_verify_and_a_truncated_custom_dump_fails(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], key: str
) -> None:
    good = run_moonflower(env={**backup_env, "PG_DATABASES": "second", "PG_GLOBALS": "true"})
    assert good.returncode == 0, good.stderr
    custom = run_moonflower(env={**backup_env, "PG_DATABASES": "second", "BACKUP_FORMAT": "custom"})
    assert custom.returncode == 0, custom.stderr

    verified = run_moonflower("verify", "--all", env=backup_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    [dump_key] = [key for key in s3.keys(bucket) if key.endswith(".dump")]
    body = s3.client().get_object(Bucket=bucket, Key=dump_key)["Body"].read()
    plant(s3, bucket, f"{key}.dump", body[: len(body) - 200])
    cut = run_moonflower("verify", "second", env=backup_env)

    assert cut.returncode == 1
    assert key in cut.stdout + cut.stderr


def test_with_encryption_configured_an_unencrypted_backup_is_refused(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """A planted plain backup, even with a valid checksum in its metadata."""
    assert run_moonflower(env={**backup_env, "PG_DATABASES": "second"}).returncode == 0
    target = unique_name("mf_plain_refused")
    env = {**backup_env, "ENCRYPTION_PASSPHRASE": "a passphrase for this test"}

    restored = run_moonflower("restore", "second", "--into", target, env=env)
    verified = run_moonflower("verify", "second", env=env)
    accepted = run_moonflower("verify", "second", "--allow-unverified", env=env)

    assert restored.returncode == 1
    assert "is not encrypted" in restored.stderr
    assert not database_exists(pg, target)
    assert verified.returncode == 1
    assert accepted.returncode == 0, accepted.stderr


def test_objects_with_impossible_or_future_dates_change_nothing(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """Named like backups, but their names lie: S3 received them long before the moment the
    name claims, or the moment does not exist. They must not become "the newest", stop
    list/prune/restore, or make prune delete a real backup."""
    env = {**backup_env, "PG_DATABASES": "second", "S3_EXPIRES_IN": "1 day"}
    old_real = "nightly/second_2020-01-01T00:00:00.000Z.sql.gz"
    future = "nightly/second_2099-01-01T00:00:00.000Z.sql.gz"
    impossible = "nightly/second_2026-02-30T25:00:00.000Z.sql.gz"
    for key in (old_real, future, impossible):
        plant(s3, bucket, key, gzip.compress(b"-- not a real dump\n"))

    backup = run_moonflower(env=env)
    listed = run_moonflower("list", "--json", env=env)
    target = unique_name("mf_not_the_future")
    restored = run_moonflower("restore", "second", "--into", target, env=env)

    assert backup.returncode == 0, backup.stderr
    assert f"ignoring {future}" in backup.stderr
    keys = s3.keys(bucket)
    assert old_real not in keys, "the expired real backup should have been pruned"
    assert future in keys, "prune deleted an object it does not own"
    assert impossible in keys, "prune deleted an object it does not own"
    assert listed.returncode == 0, listed.stderr
    assert future not in listed.stdout
    assert impossible not in listed.stdout
    assert restored.returncode == 0, restored.stderr
    assert pg.dump_text(target) == pg.dump_text("second")


def test_a_database_named_like_the_globals_is_backed_up_as_a_database(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """`_globals` is the name of the globals dump; a database may have it too, and neither
    replaces the other."""
    name = "_globals"
    if pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "0":
        pg.create_database(name)
        pg.psql("CREATE TABLE only_in_the_database AS SELECT 5 AS x", name)
    env = {**backup_env, "PG_DATABASES": name, "PG_GLOBALS": "true"}

    backup = run_moonflower(env=env)
    target = unique_name("mf_named_globals")
    restored = run_moonflower("restore", name, "--into", target, env=env)

    assert backup.returncode == 0, backup.stderr
    names = sorted(key.split("/")[-1].split("_2")[0] for key in s3.keys(bucket))
    assert names == ["%5Fglobals", "_globals"]
    assert restored.returncode == 0, restored.stderr
    assert pg.psql("SELECT x FROM only_in_the_database", target) == "5"
    # Shown apart too (issue 28, item 12): the globals under a name no database can have.
    summary = run_moonflower(env={**env, "LOG_FORMAT": "json"})
    assert summary.returncode == 0, summary.stderr
    document = json.loads(summary.stdout.strip().splitlines()[-1])
    shown = sorted(entry["database"] for entry in document["databases"])
    assert len(set(shown)) == 2, shown
    assert name in shown
    assert all(len(entry.encode()) > 63 for entry in shown if entry != name)
    listing = json.loads(run_moonflower("list", "--json", env=env).stdout)
    assert len({entry["database"] for entry in listing}) == 2
