"""Whole clusters: every database with exclusions, the globals, and pg_dump's custom format."""

import json
from collections.abc import Iterator

import pytest

from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server

ROLES_SQL = """
CREATE ROLE app_owner LOGIN PASSWORD 'owner pw';
CREATE ROLE app_reader NOLOGIN;
GRANT app_reader TO app_owner;
ALTER ROLE app_owner SET work_mem = '8MB';
"""
OWNED_SQL = """
CREATE TABLE accounts (id int PRIMARY KEY, name text);
INSERT INTO accounts VALUES (1, 'Ada'), (2, 'Grace');
ALTER TABLE accounts OWNER TO app_owner;
GRANT SELECT ON accounts TO app_reader;
"""
ROLE_FACTS = """
SELECT r.rolname, r.rolcanlogin, coalesce(s.setconfig::text, ''),
       coalesce((SELECT string_agg(m.rolname, ',') FROM pg_auth_members a
                 JOIN pg_roles m ON m.oid = a.roleid WHERE a.member = r.oid), '')
FROM pg_roles r LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid
WHERE r.rolname LIKE 'app_%' ORDER BY 1
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgServer]:
    """A cluster of its own, so the set of databases is known exactly."""
    with PgServer() as server:
        server.psql(ROLES_SQL)
        for name in ("alpha", "beta", "scratch_1", "scratch_2"):
            server.create_database(name)
        server.psql("CREATE DATABASE owned OWNER app_owner")
        server.psql(OWNED_SQL, "owned")
        yield server


def env_for(
    server: PgServer, s3: S3Server, bucket: str, spool: str, **extra: str
) -> dict[str, str]:
    return {
        **server.moonflower_env("*"),
        **s3.moonflower_env(bucket, "cluster"),
        "BACKUP_SPOOL_DIR": spool,
        **extra,
    }


def databases_in(s3: S3Server, bucket: str) -> list[str]:
    return s3.databases(bucket, "cluster")


def test_every_database_with_exclusions_including_a_new_one(
    cluster: PgServer, s3: S3Server, bucket: str, spool_dir
) -> None:
    env = env_for(cluster, s3, bucket, str(spool_dir), PG_EXCLUDE_DATABASES="scratch_* postgres")

    first = run_moonflower(env=env)
    cluster.create_database("gamma")
    second = run_moonflower(env=env)

    assert first.returncode == 0, first.stderr
    assert "found 3 database(s): alpha, beta, owned" in first.stderr
    assert "excluded: postgres, scratch_1, scratch_2" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "found 4 database(s): alpha, beta, gamma, owned" in second.stderr
    assert databases_in(s3, bucket) == ["alpha", "beta", "gamma", "owned"]


def test_globals_and_ownership_survive_a_move_to_a_fresh_cluster(
    cluster: PgServer, s3: S3Server, bucket: str, spool_dir
) -> None:
    env = env_for(cluster, s3, bucket, str(spool_dir), PG_DATABASES="owned", PG_GLOBALS="true")
    backed_up = run_moonflower(env=env)
    assert backed_up.returncode == 0, backed_up.stderr
    keys = s3.keys(bucket)
    assert any(key.startswith("cluster/_globals_") and key.endswith(".sql.gz") for key in keys)

    with PgServer() as fresh:
        target_env = {**env, **fresh.moonflower_env("owned")}
        without_roles = run_moonflower("restore", "owned", "--into", "owned_early", env=target_env)
        restored = run_moonflower(
            "restore", "owned", "--into", "owned", "--globals", env=target_env
        )

        assert without_roles.returncode == 1
        assert 'role "app_owner" does not exist' in without_roles.stderr
        assert "--globals" in without_roles.stderr
        assert restored.returncode == 0, restored.stderr
        assert fresh.psql(ROLE_FACTS) == cluster.psql(ROLE_FACTS)
        assert fresh.dump_text("owned") == cluster.dump_text("owned")
        owner = "SELECT tableowner FROM pg_tables WHERE tablename = 'accounts'"
        assert fresh.psql(owner, "owned") == "app_owner"


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_custom_format_round_trip_with_parallel_restore(
    cluster: PgServer, s3: S3Server, bucket: str, spool_dir, encrypted: bool
) -> None:
    extra = {"PG_DATABASES": "owned", "BACKUP_FORMAT": "custom"}
    if encrypted:
        extra["ENCRYPTION_PASSPHRASE"] = "custom and secret"
    env = env_for(cluster, s3, bucket, str(spool_dir), **extra)

    backed_up = run_moonflower(env=env)
    verified = run_moonflower("verify", env=env)
    target = f"owned_custom_{'enc' if encrypted else 'plain'}"
    restored = run_moonflower("restore", "owned", "--into", target, env=env)
    serial = run_moonflower("restore", "owned", "--into", f"{target}_1", "--jobs", "1", env=env)
    no_jobs = run_moonflower("restore", "owned", "--into", f"{target}_0", "--jobs", "0", env=env)
    listed = json.loads(run_moonflower("list", "--json", env=env).stdout)

    assert backed_up.returncode == 0, backed_up.stderr
    [key] = s3.keys(bucket)
    assert key.endswith(".dump.gpg" if encrypted else ".dump")
    assert verified.returncode == 0, verified.stderr + verified.stdout
    assert restored.returncode == 0, restored.stderr
    assert cluster.dump_text(target) == cluster.dump_text("owned")
    assert serial.returncode == 0, serial.stderr
    assert cluster.dump_text(f"{target}_1") == cluster.dump_text("owned")
    assert no_jobs.returncode == 2
    assert "--jobs" in no_jobs.stderr
    assert listed[0]["encrypted"] is encrypted


def test_restoring_the_globals_creates_missing_roles_and_leaves_existing_ones_alone(
    cluster: PgServer, s3: S3Server, bucket: str, spool_dir
) -> None:
    env = env_for(cluster, s3, bucket, str(spool_dir), PG_DATABASES="owned", PG_GLOBALS="true")
    assert run_moonflower(env=env).returncode == 0
    password_hash = "SELECT rolpassword FROM pg_authid WHERE rolname = 'app_owner'"
    members = (
        "SELECT count(*) FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member "
        "WHERE r.rolname = 'app_owner'"
    )

    with PgServer() as fresh:
        fresh.psql("CREATE ROLE app_owner LOGIN PASSWORD 'the target''s own password'")
        before = fresh.psql(password_hash)
        target_env = {**env, **fresh.moonflower_env("owned")}
        kept = run_moonflower(
            "restore", "owned", "--into", "owned_kept", "--globals", env=target_env
        )
        kept_hash = fresh.psql(password_hash)
        kept_members = fresh.psql(members)
        overwritten = run_moonflower(
            "restore",
            "owned",
            "--into",
            "owned_over",
            "--globals",
            "--overwrite-roles",
            env=target_env,
        )
        overwritten_hash = fresh.psql(password_hash)
        reader_exists = fresh.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_reader'")

    assert kept.returncode == 0, kept.stderr
    assert "created role(s): app_reader" in kept.stderr
    assert "left as they are: app_owner" in kept.stderr
    assert kept_hash == before
    assert kept_members == "0"
    assert reader_exists == "1"
    assert overwritten.returncode == 0, overwritten.stderr
    assert overwritten_hash != before
