"""Several destinations end to end: a backup stored on the primary (moto) and a replica
(SeaweedFS), and restores that fall back to the replica, through bin/moonflower."""

import json
from pathlib import Path

from tests.conftest import NASTY_DATABASE
from tests.support.faultproxy import RESET, FaultProxy, Reply, Request, s3_error
from tests.support.names import unique_name
from tests.support.pgserver import PgServer, free_port
from tests.support.replicas import replica_env
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.seaweed import SeaweedServer
from tests.support.slowdump import fake_pg_dump
from tests.support.stock import load_gzip_dump
from tests.support.tamper import flip_a_middle_byte


def backed_up_twice(backup_env: dict[str, str], seaweed: SeaweedServer) -> dict[str, str]:
    env = {**backup_env, **replica_env(seaweed, seaweed.new_bucket()), "S3_MAX_ATTEMPTS": "1"}
    stored = run_moonflower(env=env)
    assert stored.returncode == 0, stored.stderr
    assert "stored on offsite" in stored.stderr
    return env


def test_restore_falls_back_to_the_replica_when_the_primary_cannot_be_reached(
    backup_env: dict[str, str], pg: PgServer, seaweed: SeaweedServer
) -> None:
    env = backed_up_twice(backup_env, seaweed)
    env["S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    target = unique_name("from_replica")
    restored = run_moonflower("restore", NASTY_DATABASE, "--into", target, env=env)
    assert restored.returncode == 0, restored.stderr
    assert "restoring from primary failed" in restored.stderr
    assert "trying offsite" in restored.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_a_copy_damaged_on_the_primary_is_restored_from_the_replica(
    backup_env: dict[str, str], pg: PgServer, s3: S3Server, seaweed: SeaweedServer
) -> None:
    env = backed_up_twice(backup_env, seaweed)
    [key] = s3.keys(env["S3_BUCKET"])
    flip_a_middle_byte(s3.client(), env["S3_BUCKET"], key)
    target = unique_name("undamaged")
    restored = run_moonflower("restore", NASTY_DATABASE, "--into", target, env=env)
    assert restored.returncode == 0, restored.stderr
    assert "does not match the SHA-256" in restored.stderr
    assert "trying offsite" in restored.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)

    only_primary = run_moonflower(
        "restore", NASTY_DATABASE, "--into", unique_name("no"), "--from", "primary", env=env
    )
    assert only_primary.returncode == 1
    assert "trying" not in only_primary.stderr


def test_from_names_a_destination_that_exists(
    backup_env: dict[str, str], seaweed: SeaweedServer
) -> None:
    env = {**backup_env, **replica_env(seaweed, seaweed.new_bucket())}
    wrong = run_moonflower("restore", NASTY_DATABASE, "--into", "x", "--from", "elsewhere", env=env)
    assert wrong.returncode == 2
    assert '--from: "elsewhere" is not a destination; one of: primary, offsite' in wrong.stderr


def test_each_destination_is_pruned_by_its_own_rules_and_an_unreachable_one_is_skipped(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer
) -> None:
    far = seaweed.new_bucket()
    env = {
        **backup_env,
        **replica_env(seaweed, far),
        "PG_DATABASES": "second",
        "BACKUP_KEEP_LAST": "1",
        "BACKUP_PRUNE_MAX_DELETE": "100",
        "REPLICA_OFFSITE_BACKUP_KEEP_LAST": "3",
    }
    for _ in range(3):
        stored = run_moonflower(env=env)
        assert stored.returncode == 0, stored.stderr
    assert len(s3.keys(env["S3_BUCKET"])) == 1  # the run pruned the primary to its last one
    assert len(seaweed.keys(far)) == 3  # the replica keeps three

    env["REPLICA_OFFSITE_BACKUP_KEEP_LAST"] = "2"
    reachable = env["REPLICA_OFFSITE_S3_ENDPOINT"]
    env["REPLICA_OFFSITE_S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    env["S3_MAX_ATTEMPTS"] = "1"
    skipped = run_moonflower("prune", env=env)
    assert skipped.returncode == 1
    assert "pruning offsite skipped" in skipped.stderr
    assert len(seaweed.keys(far)) == 3

    env["REPLICA_OFFSITE_S3_ENDPOINT"] = reachable
    pruned = run_moonflower("prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert len(seaweed.keys(far)) == 2
    assert len(s3.keys(env["S3_BUCKET"])) == 1


def test_list_and_verify_read_the_replica_when_the_primary_cannot_be_reached(
    backup_env: dict[str, str], seaweed: SeaweedServer
) -> None:
    env = backed_up_twice(backup_env, seaweed)
    every = run_moonflower("list", "--all-destinations", "--json", env=env)
    assert every.returncode == 0, every.stderr
    places = sorted(entry["destination"] for entry in json.loads(every.stdout))
    assert places == ["offsite", "primary"]

    env["S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    listed = run_moonflower("list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "trying offsite" in listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["key"].startswith("far/")

    verified = run_moonflower("verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert "trying offsite" in verified.stderr

    checked = run_moonflower("check", env=env)
    assert checked.returncode == 1
    flat = " ".join(checked.stdout.split())
    assert "replica offsite: bucket writable" in flat


def test_sync_completes_a_replica_that_refused_and_never_copies_a_damaged_backup(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer
) -> None:
    far = seaweed.new_bucket()
    env = {**backup_env, **replica_env(seaweed, far), "PG_DATABASES": f"{NASTY_DATABASE} second"}
    good_secret = env["REPLICA_OFFSITE_S3_SECRET_KEY"]
    env["REPLICA_OFFSITE_S3_SECRET_KEY"] = "not-the-secret"
    refused = run_moonflower(env=env)
    assert refused.returncode == 1
    assert "not stored on the replica offsite" in refused.stderr
    assert seaweed.keys(far) == []
    primary_keys = sorted(s3.keys(env["S3_BUCKET"]))
    assert len(primary_keys) == 2

    env["REPLICA_OFFSITE_S3_SECRET_KEY"] = good_secret
    damaged = next(key for key in primary_keys if "second" in key)
    flip_a_middle_byte(s3.client(), env["S3_BUCKET"], damaged)
    planned = run_moonflower("sync", "--dry-run", "--json", env=env)
    assert planned.returncode == 0, planned.stderr
    assert {entry["to"] for entry in json.loads(planned.stdout)} == {"offsite"}
    assert seaweed.keys(far) == []

    synced = run_moonflower("sync", "--json", env=env)
    assert synced.returncode == 1
    results = {entry["key"]: entry["result"] for entry in json.loads(synced.stdout)}
    [copied] = [key for key, result in results.items() if result == "copied from primary"]
    [failed] = [result for result in results.values() if result.startswith("failed")]
    assert "does not match the SHA-256" in failed
    assert seaweed.keys(far) == [copied]

    again = run_moonflower("sync", "--to", "offsite", "--json", env=env)
    assert [entry["result"] for entry in json.loads(again.stdout)] == [failed]
    assert seaweed.keys(far) == [copied]  # nothing duplicated, nothing overwritten


def test_the_replicas_copy_restores_with_stock_tools(
    backup_env: dict[str, str], pg: PgServer, seaweed: SeaweedServer, tmp_path: Path
) -> None:
    """What docs/destinations.md tells an operator: fetch the object from the replica's
    bucket with any S3 client, then gzip -dc | psql — nothing of Moonflower's."""
    env = backed_up_twice(backup_env, seaweed)
    bucket = env["REPLICA_OFFSITE_S3_BUCKET"]
    [key] = seaweed.keys(bucket)
    assert key.startswith("far/")
    assert key.endswith(".sql.gz")
    downloaded = tmp_path / "from-replica.sql.gz"
    seaweed.client().download_file(bucket, key, str(downloaded))
    target = unique_name("stock_from_replica")
    load_gzip_dump(pg, downloaded, target)
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_an_optional_replica_that_answers_503_and_cuts_connections_warns_and_sync_completes_it(
    backup_env: dict[str, str], s3: S3Server
) -> None:
    far = s3.new_bucket()

    def refuse_writes(request: Request) -> Reply | None:
        if request.method not in ("PUT", "POST"):
            return None
        refuse_writes.calls += 1  # type: ignore[attr-defined]
        if refuse_writes.calls % 2:  # type: ignore[attr-defined]
            return s3_error(503, "SlowDown", "Please reduce your request rate.")
        return RESET

    refuse_writes.calls = 0  # type: ignore[attr-defined]
    with FaultProxy(s3.endpoint, [refuse_writes]) as proxy:
        env = {
            **backup_env,
            **replica_env(s3, far),
            "REPLICA_OFFSITE_S3_ENDPOINT": proxy.endpoint,
            "REPLICA_OFFSITE_OPTIONAL": "on",
            "S3_MAX_ATTEMPTS": "2",
        }
        warned = run_moonflower(env=env)
    assert warned.returncode == 0, warned.stderr
    assert "not stored on the replica offsite" in warned.stderr
    assert refuse_writes.calls >= 2  # type: ignore[attr-defined]
    assert s3.keys(far) == []

    env["REPLICA_OFFSITE_S3_ENDPOINT"] = s3.endpoint
    synced = run_moonflower("sync", env=env)
    assert synced.returncode == 0, synced.stderr
    [copied] = s3.keys(far)
    assert copied.startswith("far/")
    again = run_moonflower("sync", env=env)
    assert again.returncode == 0, again.stderr
    assert s3.keys(far) == [copied]


def test_a_big_dump_goes_up_to_both_while_it_is_written_and_restores_from_the_replica(
    pg: PgServer,
    s3: S3Server,
    seaweed: SeaweedServer,
    backup_env: dict[str, str],
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    far = seaweed.new_bucket()
    env = {
        **backup_env,
        **replica_env(seaweed, far),
        "PG_DATABASES": big_database,
        "BACKUP_COMPRESSION": "none",
        "PG_DUMP_PATH": pausing_pg_dump,
    }
    result = run_moonflower(env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("uploading while dumping: multipart upload started") == 2
    [key] = seaweed.keys(far)
    head = seaweed.client().head_object(Bucket=far, Key=key, ChecksumMode="ENABLED")
    assert head["Metadata"]["part-size"] == str(16 * 1024 * 1024)
    assert seaweed.no_uploads_left(far)

    copy = unique_name("from_replica")
    restored = run_moonflower("restore", big_database, "--into", copy, "--from", "offsite", env=env)
    assert restored.returncode == 0, restored.stderr
    assert pg.dump_text(copy) == pg.dump_text(big_database)


def test_a_dump_failing_after_parts_went_to_both_leaves_nothing_on_either(
    s3: S3Server, seaweed: SeaweedServer, backup_env: dict[str, str], tmp_path: Path
) -> None:
    failing = fake_pg_dump(
        tmp_path,
        "head -c 40000000 /dev/urandom\nsleep 1\necho 'pg_dump: error: lost it' >&2\nexit 1\n",
    )
    far = seaweed.new_bucket()
    env = {
        **backup_env,
        **replica_env(seaweed, far),
        "PG_DATABASES": "second",
        "BACKUP_COMPRESSION": "none",
        "PG_DUMP_PATH": str(failing),
    }
    result = run_moonflower(env=env)
    assert result.returncode == 1
    assert result.stderr.count("multipart upload started") == 2
    assert s3.keys(env["S3_BUCKET"]) == []
    assert seaweed.keys(far) == []
    assert s3.no_uploads_left(env["S3_BUCKET"])
    assert seaweed.no_uploads_left(far)
