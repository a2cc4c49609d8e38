"""Many PostgreSQL servers from one Moonflower: two real servers (each with a database
`app` of its own), backed up, listed, restored and pruned per cluster through bin/moonflower,
and both scheduled by one `run` where one server's hang holds up nothing of the other's."""

import functools
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest

from tests.support.names import unique_name
from tests.support.pgserver import PgServer
from tests.support.pitr import (
    Streaming,
    commit_rows,
    commit_times,
    empty_restore_dir,
    restored_rows,
)
from tests.support.procs import processes_with
from tests.support.runner import clean_environment, moonflower_command, run_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import MARKER, use_slow_pg_dump
from tests.support.waiting import eventually
from tests.support.webhookserver import WebhookReceiver


@pytest.fixture
def two_servers() -> Iterator[tuple[PgServer, PgServer]]:
    with PgServer() as first, PgServer() as second:
        for server, rows in ((first, "1, 2"), (second, "30, 40, 50")):
            server.create_database("app")
            server.psql(
                f"CREATE TABLE items (n int); INSERT INTO items SELECT unnest(ARRAY[{rows}])",
                "app",
            )
        yield first, second


def cluster_env(
    servers: tuple[PgServer, PgServer], s3: S3Server, bucket: str, tmp_path: Path
) -> dict[str, str]:
    first, second = servers
    shared = {
        k: v for k, v in first.moonflower_env("app").items() if k not in ("PG_HOST", "PG_PORT")
    }
    state = tmp_path / "state"
    state.mkdir()
    return {
        **shared,
        **s3.moonflower_env(bucket, "nightly"),
        "BACKUP_STATE_DIR": str(state),
        "CLUSTER_FIRST_PG_HOST": "127.0.0.1",
        "CLUSTER_FIRST_PG_PORT": str(first.port),
        "CLUSTER_SECOND_PG_HOST": "127.0.0.1",
        "CLUSTER_SECOND_PG_PORT": str(second.port),
    }


def keys_under(s3: S3Server, bucket: str, folder: str) -> list[str]:
    return [key for key in s3.keys(bucket) if key.startswith(f"nightly/{folder}/")]


def test_each_server_is_backed_up_restored_listed_and_pruned_on_its_own(
    two_servers: tuple[PgServer, PgServer], s3: S3Server, tmp_path: Path
) -> None:
    first, second = two_servers
    bucket = s3.new_bucket()
    env = cluster_env(two_servers, s3, bucket, tmp_path)
    with WebhookReceiver() as receiver:
        env.update(WEBHOOK_SUCCESS=receiver.url("/ok"), WEBHOOK_POST_LOGS="on")
        for _ in range(2):
            backed_up = run_moonflower("backup", env=env)
            assert backed_up.returncode == 0, backed_up.stderr
        bodies = [received.body.decode() for received in receiver.received]
    del env["WEBHOOK_SUCCESS"]
    assert "(cluster first)" in backed_up.stdout
    assert "(cluster second)" in backed_up.stdout
    assert len(bodies) == 4  # one success per cluster and run, each with its own log
    for body in bodies:
        named = "first" if "cluster: first;" in body else "second"
        other = "second" if named == "first" else "first"
        assert f"cluster: {named}; result: ok" in body
        assert f"[{other}" not in body
    assert len(keys_under(s3, bucket, "first")) == 2
    assert len(keys_under(s3, bucket, "second")) == 2
    assert {key.split("/")[1] for key in s3.keys(bucket)} == {"first", "second"}

    ambiguous = run_moonflower("list", env=env)
    assert ambiguous.returncode == 2
    assert "--cluster: required by `moonflower list`" in ambiguous.stderr
    listed = run_moonflower("list", "--cluster", "second", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {entry["key"] for entry in json.loads(listed.stdout)} == set(
        keys_under(s3, bucket, "second")
    )

    copy = unique_name("from_second")
    restored = run_moonflower("restore", "app", "--into", copy, "--cluster", "second", env=env)
    assert restored.returncode == 0, restored.stderr
    assert second.psql("SELECT string_agg(n::text, ',' ORDER BY n) FROM items", copy) == "30,40,50"
    assert copy not in first.psql("SELECT string_agg(datname, ',') FROM pg_database")

    kept_second = keys_under(s3, bucket, "second")
    pruned = run_moonflower("prune", "--cluster", "first", "--keep-last", "1", "--yes", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert len(keys_under(s3, bucket, "first")) == 1
    assert keys_under(s3, bucket, "second") == kept_second

    unknown = run_moonflower("list", "--cluster", "third", env=env)
    assert unknown.returncode == 2
    assert '--cluster: "third" is not a cluster; one of: first, second' in unknown.stderr


def test_one_run_schedules_both_and_a_hanging_server_holds_up_nothing(
    two_servers: tuple[PgServer, PgServer], s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = cluster_env(two_servers, s3, bucket, tmp_path)
    slow = tmp_path / "slow"
    slow.mkdir()
    hanging: dict[str, str] = {}
    use_slow_pg_dump(hanging, slow)
    env.update(
        SCHEDULE="*/2 * * * * *",
        CLUSTER_SECOND_PG_DUMP_PATH=hanging["PG_DUMP_PATH"],
        BACKUP_SPOOL_DIR=str(tmp_path / "spool"),
    )
    (tmp_path / "spool").mkdir()
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            moonflower_command("run"), env=clean_environment(env), stdout=log, stderr=log
        )
    try:
        assert eventually(lambda: processes_with(MARKER) != [], 60), log_path.read_text()
        # the second cluster's dump hangs; the first one's runs go on, on time
        assert eventually(lambda: len(keys_under(s3, bucket, "first")) >= 3, 60), (
            log_path.read_text()
        )
        assert keys_under(s3, bucket, "second") == []
        healthy = run_moonflower("health", "--cluster", "first", env=env)
        assert healthy.returncode == 0, healthy.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=120)
    text = log_path.read_text()
    assert status == 143, text  # a run was going on (the second cluster's): abandoned
    assert "[first" in text
    assert "[second" in text
    assert eventually(lambda: processes_with(MARKER) == [], 30)
    assert list((tmp_path / "spool").glob("*.sql*")) == []
    overall = run_moonflower("health", env=env)
    assert overall.returncode == 1
    assert "cluster second" in overall.stdout


def wal_after(s3: S3Server, bucket: str, folder: str, moment: pendulum.DateTime) -> bool:
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=f"nightly/{folder}/wal/")
    return any(
        pendulum.instance(item["LastModified"]) > moment for item in listing.get("Contents", [])
    )


@pytest.fixture
def second_restore_dir() -> Iterator[Path]:
    with empty_restore_dir() as target:
        yield target


def test_both_servers_stream_their_wal_at_once_and_each_restores_to_its_latest(
    two_servers: tuple[PgServer, PgServer],
    s3: S3Server,
    tmp_path: Path,
    restore_dir: Path,
    second_restore_dir: Path,
) -> None:
    bucket = s3.new_bucket()
    env = {
        **cluster_env(two_servers, s3, bucket, tmp_path),
        "WAL_STREAM": "on",
        "WAL_PUSH_INTERVAL": "1",
        "BACKUP_SPOOL_DIR": str(tmp_path),
    }
    for server in two_servers:
        server.psql("CREATE TABLE ledger (n int PRIMARY KEY, committed timestamptz)", "app")
    for name in ("first", "second"):
        based = run_moonflower("basebackup", "--cluster", name, env=env)
        assert based.returncode == 0, based.stderr
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        assert eventually(lambda: streaming.text().count("WAL streaming started") >= 2, 60), (
            streaming.text()
        )
        first, second = two_servers
        commit_rows(first, 0, 4)
        commit_rows(second, 100, 6)
        for name, server in (("first", first), ("second", second)):
            last = commit_times(server)[-1][1].add(seconds=1)
            caught_up = functools.partial(wal_after, s3, bucket, name, last)
            assert eventually(caught_up, 60), streaming.text()
    finally:
        assert streaming.stop() == 0, streaming.text()
    for name, directory, expected in (
        ("first", restore_dir, [0, 1, 2, 3]),
        ("second", second_restore_dir, [100, 101, 102, 103, 104, 105]),
    ):
        restored = run_moonflower(
            "restore-cluster",
            "--cluster",
            name,
            "--to",
            str(directory),
            "--latest",
            "--start",
            env=env,
        )
        assert restored.returncode == 0, restored.stderr
        assert restored_rows(directory, first.password) == expected


def test_a_stopped_server_fails_its_own_cluster_only(
    two_servers: tuple[PgServer, PgServer], s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = cluster_env(two_servers, s3, bucket, tmp_path)
    two_servers[1].stop()
    result = run_moonflower("backup", env=env)
    assert result.returncode == 1, result.stderr
    assert len(keys_under(s3, bucket, "first")) == 1
    assert keys_under(s3, bucket, "second") == []
    assert run_moonflower("health", "--cluster", "first", env=env).returncode == 0
    overall = run_moonflower("health", env=env)
    assert overall.returncode == 1
    assert "cluster second" in overall.stdout
    assert "cluster first" not in overall.stdout
