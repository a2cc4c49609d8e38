"""One writer per WAL archive (issue 29, item 2): a second `run` streaming into a prefix held
by a first one refuses to start and names the holder; a stale lease (its writer killed, or
not renewed for a few push intervals) is taken over, logged; a writer whose lease was taken
stops pushing and says so; `wal-push` into a held archive is refused; `check` shows the
holder. Through real PostgreSQL, moto over HTTP and a real webhook receiver."""

import email.utils
import json
import signal
import socket
import time
from pathlib import Path

import pendulum

from tests.support.faultproxy import RESET, FaultProxy, Reply, Request
from tests.support.pgserver import PgServer
from tests.support.pitr import PUSH_SECONDS, Streaming, pitr_env
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually
from tests.support.webhookserver import WebhookReceiver

LEASE_KEY = "pitr/locks/wal-writer.json"
STALE_SECONDS = 6 * PUSH_SECONDS


def lease_of(s3: S3Server, bucket: str) -> dict[str, object] | None:
    client = s3.client()
    if LEASE_KEY not in s3.keys(bucket):
        return None
    document: dict[str, object] = json.loads(
        client.get_object(Bucket=bucket, Key=LEASE_KEY)["Body"].read()
    )
    return document


def plant_lease(s3: S3Server, bucket: str, host: str) -> None:
    document = {
        "writer": "stream:elsewhere",
        "kind": "stream",
        "host": host,
        "pid": 4242,
        "process_start": "1",
        "since": "2026-12-01T00:00:00+00:00",
    }
    s3.client().put_object(Bucket=bucket, Key=LEASE_KEY, Body=json.dumps(document).encode())


def lease_age(s3: S3Server, bucket: str) -> float:
    head = s3.client().head_object(Bucket=bucket, Key=LEASE_KEY)
    now = email.utils.parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"])
    return (now - head["LastModified"]).total_seconds()


def test_a_second_writer_is_refused_and_named_while_the_first_streams(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = Streaming(pitr_env(source, s3, bucket, tmp_path / "first"), tmp_path / "first.log")
    try:
        first.wait_started()
        holder = lease_of(s3, bucket)
        assert holder is not None
        assert holder["pid"] == first.process.pid, holder
        assert holder["host"] == socket.gethostname()
        env_2 = pitr_env(
            source, s3, bucket, tmp_path / "second", PG_REPLICATION_SLOT="second_writer"
        )
        second = run_moonflower("run", env=env_2, timeout=60)
        assert second.returncode == 2, second.stderr
        assert "S3_PATH" in second.stderr
        assert f"pid {first.process.pid}" in second.stderr, second.stderr
        assert socket.gethostname() in second.stderr
        assert "Traceback" not in second.stderr
        assert lease_of(s3, bucket) == holder  # the refused writer wrote nothing over it
        slots = source.psql("SELECT slot_name FROM pg_replication_slots")
        assert "second_writer" not in slots  # refused before it touched the server
        check = run_moonflower("check", env=env_2)
        assert f"pid {first.process.pid}" in check.stdout + check.stderr
    finally:
        assert first.stop() == 0, first.text()
    assert lease_of(s3, bucket) is None  # a clean stop gives the archive back


def test_a_killed_writer_on_this_host_is_taken_over_at_once(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path)
    first = Streaming(env, tmp_path / "first.log")
    first.wait_started()
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    assert lease_of(s3, bucket) is not None  # a killed writer cannot give it back
    second = Streaming(env, tmp_path / "second.log")
    try:
        second.wait_started()
        assert "taking over the WAL archive's stale lease" in second.text()
        holder = lease_of(s3, bucket)
        assert holder is not None
        assert holder["pid"] == second.process.pid
    finally:
        assert second.stop() == 0, second.text()


def test_a_lease_not_renewed_for_a_few_push_intervals_is_taken_over(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    plant_lease(s3, bucket, "other-host.example")
    env = pitr_env(source, s3, bucket, tmp_path)
    refused = run_moonflower("run", env=env, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert "other-host.example" in refused.stderr
    assert eventually(lambda: lease_age(s3, bucket) > STALE_SECONDS + 1, STALE_SECONDS + 30)
    taker = Streaming(env, tmp_path / "run.log")
    try:
        taker.wait_started()
        assert "taking over" in taker.text()
        assert "other-host.example" in taker.text()
        holder = lease_of(s3, bucket)
        assert holder is not None
        assert holder["pid"] == taker.process.pid
    finally:
        assert taker.stop() == 0, taker.text()


def test_a_writer_whose_lease_was_taken_stops_pushing_and_says_so(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    with WebhookReceiver() as hooks:
        env = pitr_env(source, s3, bucket, tmp_path, WEBHOOK_FAILURE=hooks.url("/failure"))
        first = Streaming(env, tmp_path / "run.log")
        try:
            first.wait_started()
            plant_lease(s3, bucket, "usurper.example")
            assert eventually(lambda: "taken over by" in first.text(), 30), first.text()
            taken = pendulum.now("UTC")
            assert eventually(lambda: hooks.received, 30)
            assert "usurper.example" in hooks.received[0].body.decode()
            source.psql("SELECT pg_switch_wal()")
            source.psql("CREATE TABLE IF NOT EXISTS after_takeover (n int)", "app")
            source.psql("SELECT pg_switch_wal()")
            time.sleep(3 * PUSH_SECONDS)  # rounds in which a writer that kept going would push
            listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="pitr/wal/")
            pushed_after = [
                item["Key"]
                for item in listing.get("Contents", [])
                if pendulum.instance(item["LastModified"]) > taken.add(seconds=1)
            ]
            assert pushed_after == [], pushed_after
            assert lease_of(s3, bucket) is not None
            assert lease_of(s3, bucket)["host"] == "usurper.example"  # type: ignore[index]
            unhealthy = run_moonflower("health", env=env)
            assert unhealthy.returncode == 1
            assert "usurper.example" in unhealthy.stdout
        finally:
            assert first.stop() == 0, first.text()


def test_wal_push_into_an_archive_a_stream_holds_is_refused(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    plant_lease(s3, bucket, "streaming-host.example")
    env = {**pitr_env(source, s3, bucket, tmp_path), "WAL_STREAM": "off"}
    segments = sorted(
        path
        for path in (source.data_dir / "pg_wal").iterdir()
        if path.is_file() and len(path.name) == 24
    )
    pushed = run_moonflower("wal-push", str(segments[0]), env=env)
    assert pushed.returncode == 2, pushed.stderr
    assert "streaming-host.example" in pushed.stderr
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="pitr/wal/")
    assert listing.get("KeyCount", 0) == 0


def test_s3_down_at_the_start_delays_the_lease_not_the_stream(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    """The lease cannot be asked for: the stream starts anyway (the WAL waits in the
    spool), and takes the lease and pushes once S3 answers."""
    bucket = s3.new_bucket()
    down = [True]

    def unreachable(request: Request) -> Reply | None:
        return RESET if down else None

    with FaultProxy(s3.endpoint, [unreachable]) as proxy:
        env = pitr_env(
            source, s3, bucket, tmp_path, S3_ENDPOINT=proxy.endpoint, S3_MAX_ATTEMPTS="1"
        )
        run = Streaming(env, tmp_path / "run.log")
        try:
            run.wait_started()
            assert "lease cannot be taken yet" in run.text()
            source.psql("SELECT pg_switch_wal()")
            assert eventually(lambda: waiting_in_spool(tmp_path), 30), run.text()
            assert lease_of(s3, bucket) is None
            down.clear()
            assert eventually(lambda: lease_of(s3, bucket) is not None, 60), run.text()
            assert eventually(lambda: archived_segments(s3, bucket), 60), run.text()
        finally:
            assert run.stop() == 0, run.text()


def archived_segments(s3: S3Server, bucket: str) -> list[str]:
    return [key for key in s3.keys(bucket) if "/wal/" in key and ".partial" not in key]


def waiting_in_spool(spool: Path) -> list[str]:
    """Completed segments the stream received and holds for S3."""
    return [
        path.name
        for directory in spool.glob("wal-stream-*")
        for path in directory.iterdir()
        if len(path.name) == 24
    ]
