"""The WAL archive and stream: what they need from the server, pushing once, no gap through
failures, waiting for a server that is down, and how they show in check and the metrics."""

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

from tests.support.faultproxy import FaultProxy, s3_error
from tests.support.pgserver import PgServer
from tests.support.pitr import (
    Streaming,
    archive_caught_up,
    archive_only_env,
    commit_rows,
    pitr_env,
    receivers_of,
    restored_rows,
)
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually


def test_a_user_without_replication_is_refused_in_one_line(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    source.psql("CREATE ROLE plain LOGIN PASSWORD 'plain-password'")
    env = {
        **pitr_env(source, s3, s3.new_bucket(), tmp_path),
        "PG_USER": "plain",
        "PG_PASSWORD": "plain-password",
    }
    for command in ("run", "check"):
        result = run_moonflower(command, env=env)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("moonflower:")]
        assert lines == [
            "moonflower: PG_USER: plain lacks the REPLICATION attribute that WAL_STREAM needs "
            "(ALTER ROLE plain REPLICATION)"
        ]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "wal-stream-moonflower").exists()
    assert source.psql("SELECT count(*) FROM pg_replication_slots") == "0"


def test_wal_push_is_idempotent_and_refuses_other_content(s3: S3Server, tmp_path: Path) -> None:
    env = archive_only_env(s3, s3.new_bucket(), tmp_path)
    segment = tmp_path / "incoming" / "000000010000000000000007"
    segment.parent.mkdir()
    content = os.urandom(1 << 20)
    segment.write_bytes(content)
    first = run_moonflower("wal-push", str(segment), env=env)
    assert first.returncode == 0, first.stderr
    (key,) = s3.keys(env["S3_BUCKET"])
    assert key == "pitr/wal/000000010000000000000007.gz.gpg"
    stored = s3.client().get_object(Bucket=env["S3_BUCKET"], Key=key)["Body"].read()
    assert content[:64] not in stored
    assert stored[0] & 0x80  # an OpenPGP packet: unreadable without the passphrase
    again = run_moonflower("wal-push", str(segment), env=env)
    assert again.returncode == 0, again.stderr
    assert "already archived with the same content" in again.stderr
    segment.write_bytes(os.urandom(1 << 20))
    other = run_moonflower("wal-push", str(segment), env=env)
    assert other.returncode == 1
    assert "already holds a different 000000010000000000000007" in other.stderr

    fetched = tmp_path / "fetched"
    result = run_moonflower("wal-fetch", segment.name, str(fetched), env=env)
    assert result.returncode == 0, result.stderr
    assert fetched.read_bytes() == content
    missing = run_moonflower("wal-fetch", "000000010000000000000008", str(fetched), env=env)
    assert missing.returncode == 1
    assert fetched.read_bytes() == content
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("moonflower-")]


def test_no_gap_through_a_killed_receiver_a_restarted_server_and_an_s3_outage(
    source: PgServer, s3: S3Server, proxy: FaultProxy, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = {
        **pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd"),
        "S3_ENDPOINT": proxy.endpoint,
        "S3_MAX_ATTEMPTS": "1",
    }
    assert run_moonflower("basebackup", env=env).returncode == 0
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        assert eventually(lambda: receivers_of(streaming.process), 60), streaming.text()
        commit_rows(source, 0, 5)
        proxy.rules.append(lambda request: s3_error(503, "ServiceUnavailable"))
        commit_rows(source, 5, 5)
        assert eventually(lambda: "WAL not archived yet" in streaming.text(), 60)
        for pid in receivers_of(streaming.process):
            os.kill(pid, signal.SIGKILL)
        source.restart()
        commit_rows(source, 10, 5)
        source.psql("SELECT pg_switch_wal()")
        assert eventually(lambda: streaming.text().count("WAL streaming started") >= 2, 60)
        proxy.rules.clear()
        archive_caught_up(s3, bucket, source, seconds=90)
    finally:
        assert streaming.stop() == 0, streaming.text()
    keys = s3.keys(bucket)
    complete = {
        key.split("/")[2][:24] for key in keys if "/wal/0" in key and ".partial." not in key
    }
    partials = {key.split("/")[2][:24] for key in keys if ".partial." in key}
    assert not complete & partials, "a completed segment kept its partial uploads"
    listing = json.loads(run_moonflower("list", "--json", env=env).stdout)
    (base,) = [entry for entry in listing if entry.get("kind") == "base"]
    assert base["gap_at"] is None
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert restored_rows(restore_dir, source.password) == list(range(15))


def test_the_stream_waits_for_a_server_that_is_down_at_start(
    source: PgServer, s3: S3Server, tmp_path: Path
) -> None:
    env = pitr_env(source, s3, s3.new_bucket(), tmp_path)
    source.halt()
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        assert eventually(lambda: "WAL streaming waits for the server" in streaming.text(), 60)
        assert streaming.process.poll() is None, streaming.text()
        source.resume()
        assert eventually(lambda: "WAL streaming started" in streaming.text(), 90), streaming.text()
    finally:
        assert streaming.stop() == 0, streaming.text()


def test_check_reports_the_replication_slot(source: PgServer, s3: S3Server, tmp_path: Path) -> None:
    env = pitr_env(source, s3, s3.new_bucket(), tmp_path)
    before = run_moonflower("check", env=env)
    assert before.returncode == 0, before.stdout + before.stderr
    assert "replication slot moonflower will be created" in " ".join(before.stdout.split())
    assert run_moonflower("basebackup", env=env).returncode == 0  # it makes the slot
    after = run_moonflower("check", env=env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "replication slot moonflower exists" in " ".join(after.stdout.split())


def test_the_stream_shows_in_the_metrics(source: PgServer, s3: S3Server, tmp_path: Path) -> None:
    """While streaming: the time the newest WAL reached S3, the stream up, and the WAL the
    server keeps for the slot."""
    from prometheus_client.parser import text_string_to_metric_families

    from tests.support.pgserver import free_port

    port = free_port()
    env = pitr_env(source, s3, s3.new_bucket(), tmp_path, METRICS_ADDRESS=f"127.0.0.1:{port}")
    streaming = Streaming(env, tmp_path / "run.log")

    def metrics() -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                text = page.read().decode()
        except OSError:
            return {}
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    try:
        streaming.wait_started()
        commit_rows(source, 0, 3)
        assert eventually(
            lambda: "moonflower_wal_last_upload_timestamp_seconds" in metrics(), 60
        ), streaming.text()
        seen = metrics()
        assert seen["moonflower_wal_stream_up"] == 1
        assert abs(seen["moonflower_wal_last_upload_timestamp_seconds"] - time.time()) < 60
        assert 0 <= seen["moonflower_wal_slot_lag_bytes"] < 64 * 1024**2
    finally:
        assert streaming.stop() == 0, streaming.text()
