"""`list`, `restore` and `verify` against real PostgreSQL, S3 and gpg."""

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NASTY_DATABASE
from tests.support import gpgkeys
from tests.support.gpgkeys import KeyPair
from tests.support.names import unique_name
from tests.support.pgserver import COMMAND_TIMEOUT_SECONDS, PgServer
from tests.support.runner import backed_up, run_moonflower
from tests.support.s3server import S3Server

PASSPHRASE = "restore me 'please' $now"


def restore(backup_env: dict[str, str], *args: str, **settings: str):
    return run_moonflower("restore", *args, env={**backup_env, **settings})


def test_plain_backup_restores_through_moonflower(pg: PgServer, backup_env: dict[str, str]) -> None:
    backed_up(backup_env)

    target = unique_name("mf_restored_plain")
    result = restore(backup_env, NASTY_DATABASE, "--into", target)

    assert result.returncode == 0, result.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_passphrase_backup_restores_through_moonflower(
    pg: PgServer, backup_env: dict[str, str]
) -> None:
    backed_up(backup_env, ENCRYPTION_PASSPHRASE=PASSPHRASE)
    target = unique_name("mf_restored_sym")

    result = restore(backup_env, NASTY_DATABASE, "--into", target, ENCRYPTION_PASSPHRASE=PASSPHRASE)

    assert result.returncode == 0, result.stderr
    assert PASSPHRASE not in result.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_public_key_backup_restores_with_the_private_key(
    pg: PgServer, backup_env: dict[str, str], key_pair: KeyPair
) -> None:
    backed_up(backup_env, ENCRYPTION_PUBLIC_KEY=key_pair.public_base64)
    import base64

    target = unique_name("mf_restored_pubkey")
    without_key = restore(backup_env, NASTY_DATABASE, "--into", unique_name("mf_never"))
    result = restore(
        backup_env,
        NASTY_DATABASE,
        "--into",
        target,
        ENCRYPTION_PRIVATE_KEY=base64.b64encode(key_pair.secret_armored).decode(),
        ENCRYPTION_PRIVATE_KEY_PASSPHRASE=key_pair.passphrase,
    )

    assert without_key.returncode == 1  # a restore failure, not bad configuration
    assert "ENCRYPTION_PRIVATE_KEY: required to decrypt" in without_key.stderr
    assert "Traceback" not in without_key.stderr
    assert result.returncode == 0, result.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def old_tool_backup(pg: PgServer, database: str, target: Path, encrypted: bool) -> None:
    """What the original image made: `pg_dump -Z 5`, or `pg_dump | gpg` (gpg compressing)."""
    dump = subprocess.run(
        [pg.tool("pg_dump"), "-Z", "5"] if not encrypted else [pg.tool("pg_dump")],
        env=pg.client_env(database),
        capture_output=True,
        check=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    ).stdout
    if not encrypted:
        target.write_bytes(dump)
        return
    with gpgkeys.gnupg_home() as home:
        target.write_bytes(gpgkeys.gpg(home, "--passphrase", PASSPHRASE, "--symmetric", stdin=dump))


@pytest.mark.parametrize("encrypted", [False, True])
def test_backups_made_by_the_original_image_restore(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    tmp_path: Path,
    encrypted: bool,
) -> None:
    extension = ".sql.gpg" if encrypted else ".sql.gz"
    key = f"nightly/second_2023-09-12T01:00:00.000Z{extension}"
    made = tmp_path / "old"
    old_tool_backup(pg, "second", made, encrypted)
    s3.client().upload_file(str(made), bucket, key)
    target = unique_name(f"mf_old_{'gpg' if encrypted else 'gz'}")

    refused = restore(backup_env, "second", "--into", target, ENCRYPTION_PASSPHRASE=PASSPHRASE)
    created_by_refused = pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'")
    result = restore(
        backup_env,
        "second",
        "--into",
        target,
        "--allow-unverified",
        ENCRYPTION_PASSPHRASE=PASSPHRASE,
    )

    assert refused.returncode == 1
    assert "no recorded SHA-256" in refused.stderr
    assert "--allow-unverified" in refused.stderr
    assert created_by_refused == "0"
    assert result.returncode == 0, result.stderr
    assert "going on because of --allow-unverified" in result.stderr
    assert pg.dump_text(target) == pg.dump_text("second")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_tampered_backup_is_refused_before_the_target_is_touched(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], damage: str
) -> None:
    backed_up(backup_env, PG_DATABASES="second")
    [key] = s3.keys(bucket)
    client = s3.client()
    original = client.get_object(Bucket=bucket, Key=key)
    body = original["Body"].read()
    body = (
        body[: len(body) // 2]
        if damage == "truncate"
        else body[:40] + bytes([body[40] ^ 1]) + body[41:]
    )
    client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=original["Metadata"])
    target = unique_name(f"mf_tampered_{damage}")

    restored = restore(backup_env, "second", "--into", target)
    verified = run_moonflower("verify", env=backup_env)

    assert restored.returncode == 1
    assert "checksum" in restored.stderr
    assert pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'") == "0"
    assert verified.returncode == 1
    assert "does not match the SHA-256" in verified.stderr


def test_a_target_with_tables_needs_drop_existing(pg: PgServer, backup_env: dict[str, str]) -> None:
    backed_up(backup_env, PG_DATABASES="second")
    busy = unique_name("mf_busy")
    pg.create_database(busy)
    pg.psql("CREATE TABLE precious (x int); INSERT INTO precious VALUES (42);", busy)

    refused = restore(backup_env, "second", "--into", busy)
    still_there = pg.psql("SELECT x FROM precious", busy)
    replaced = restore(backup_env, "second", "--into", busy, "--drop-existing")

    assert refused.returncode == 1
    assert "--drop-existing" in refused.stderr
    assert still_there == "42"
    assert replaced.returncode == 0, replaced.stderr
    assert pg.dump_text(busy) == pg.dump_text("second")


def test_verify_checks_newest_backups_and_can_restore_them(
    pg: PgServer, backup_env: dict[str, str]
) -> None:
    backed_up(backup_env, PG_DATABASES=f"second {NASTY_DATABASE}")

    result = run_moonflower("verify", "--restore", env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "ok, restored" in result.stdout
    leftovers = pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'moonflower_verify_%'")
    assert leftovers == "0"


def test_verify_catches_a_dump_that_was_cut_short(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """A well-formed gzip whose SQL stops early (as when pg_dump died) fails verification."""
    import hashlib

    body = gzip.compress(b"--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (x int);\n")
    s3.client().put_object(
        Bucket=bucket,
        Key="nightly/second_2024-01-01T00:00:00.000Z.sql.gz",
        Body=body,
        Metadata={"sha256": hashlib.sha256(body).hexdigest()},
    )

    result = run_moonflower("verify", "second", env=backup_env)

    assert result.returncode == 1
    assert "truncated" in result.stderr


def test_list_handles_more_than_a_thousand_backups(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    client = s3.client()
    count = 1050
    for number in range(count):
        moment = f"2025-01-01T00:{number // 60 % 60:02d}:{number % 60:02d}.{number // 3600:03d}Z"
        client.put_object(Bucket=bucket, Key=f"nightly/db{number % 3}_{moment}.sql.gz", Body=b"x")
    client.put_object(Bucket=bucket, Key="nightly/unrelated.txt", Body=b"x")

    as_json = run_moonflower("list", "--json", env=backup_env)
    as_table = run_moonflower("list", "db1", env=backup_env)

    assert as_json.returncode == 0, as_json.stderr
    entries = json.loads(as_json.stdout)
    assert len(entries) == count
    created = [entry["created"] for entry in entries]
    assert created == sorted(created, reverse=True)
    assert set(entries[0]) == {
        "key",
        "database",
        "created",
        "size",
        "encrypted",
        "locked_until",
        "expires",
        "flagged",
    }
    assert as_table.returncode == 0, as_table.stderr
    assert "(350)" in as_table.stdout


@pytest.mark.parametrize(
    "content",
    [
        "CREATE SEQUENCE only_a_sequence",
        "SELECT lo_from_bytea(0, 'only a large object')",
        "CREATE MATERIALIZED VIEW only_a_view AS SELECT 1 AS x",
        "CREATE FUNCTION only_a_function() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA only_a_schema",
    ],
)
def test_any_non_empty_target_is_refused_and_dropped_only_on_request(
    pg: PgServer, backup_env: dict[str, str], content: str
) -> None:
    backed_up(backup_env, PG_DATABASES="second")
    target = unique_name("mf_not_empty")
    pg.create_database(target)
    pg.psql(content, target)

    refused = restore(backup_env, "second", "--into", target)
    untouched = pg.dump_text(target)
    replaced = restore(backup_env, "second", "--into", target, "--drop-existing")

    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert "--drop-existing" in refused.stderr
    assert untouched != pg.dump_text("second")
    assert replaced.returncode == 0, replaced.stderr
    assert pg.dump_text(target) == pg.dump_text("second")
