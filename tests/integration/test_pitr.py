"""Point-in-time recovery end to end: `moonflower run` streaming WAL, `basebackup`, and
`restore-cluster` into a new data directory that a real PostgreSQL 18 then runs.

Each test has its own server: streaming holds a replication slot, and one test kills the
server as a crash would."""

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pendulum
import pytest

from tests.support.faultproxy import FORWARD_HALF, FaultProxy, Request, s3_error
from tests.support.gpgkeys import KeyPair
from tests.support.pgserver import PgServer
from tests.support.procs import read_proc
from tests.support.procscan import descendants
from tests.support.runner import clean_environment, moonflower_command, run_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually

PUSH_SECONDS = 1
UNPRIVILEGED = "nobody"


def pitr_env(
    source: PgServer, s3: S3Server, bucket: str, spool: Path, **extra: str
) -> dict[str, str]:
    return {
        **source.moonflower_env("app"),
        **s3.moonflower_env(bucket, "pitr"),
        "BACKUP_SPOOL_DIR": str(spool),
        "BACKUP_STATE_DIR": str(spool),
        "WAL_STREAM": "on",
        "WAL_PUSH_INTERVAL": str(PUSH_SECONDS),
        **extra,
    }


class Streaming:
    """`moonflower run` with WAL_STREAM=on in the background, its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            moonflower_command("run"),
            env=clean_environment(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log_path.read_text()

    def wait_started(self) -> None:
        assert eventually(lambda: "WAL streaming started" in self.text(), 60), self.text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


def commit_rows(server: PgServer, first: int, count: int) -> None:
    """One transaction per row, about a fifth of a second apart."""
    for n in range(first, first + count):
        server.psql(
            f"INSERT INTO ledger VALUES ({n}, clock_timestamp()); SELECT pg_sleep(0.2)", "app"
        )


def commit_times(server: PgServer) -> list[tuple[int, pendulum.DateTime]]:
    rows = server.psql(
        "SELECT n, to_char(committed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
        "FROM ledger ORDER BY n",
        "app",
    )
    return [
        (int(n), pendulum.parse(moment + "Z"))  # type: ignore[misc]
        for n, moment in (line.split("|") for line in rows.splitlines())
    ]


def archive_caught_up(
    s3: S3Server, bucket: str, server: PgServer, seconds: float = 60
) -> list[tuple[int, pendulum.DateTime]]:
    """The commit times of the rows, once S3 holds WAL pushed a second after the last."""
    times = commit_times(server)
    assert eventually(lambda: archived_after(s3, bucket, times[-1][1].add(seconds=1)), seconds)
    return times


def stream_rows(
    env: dict[str, str], log_path: Path, server: PgServer, first: int, s3: S3Server, bucket: str
) -> None:
    """Stream while five rows are committed from `first`, until S3 holds their WAL."""
    streaming = Streaming(env, log_path)
    try:
        streaming.wait_started()
        commit_rows(server, first, 5)
        server.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, server)
    finally:
        assert streaming.stop() == 0, streaming.text()


def archived_after(s3: S3Server, bucket: str, moment: pendulum.DateTime) -> bool:
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="pitr/wal/")
    return any(
        pendulum.instance(item["LastModified"]) > moment for item in listing.get("Contents", [])
    )


LAST_SERVER_LOG: list[str] = []


def restored_rows(directory: Path, password: str) -> list[int]:
    with PgServer(password=password, data_dir=directory) as restored:
        output = restored.psql("SELECT n FROM ledger ORDER BY n", "app")
        LAST_SERVER_LOG[:] = [restored.log_file.read_text()]
    return [int(line) for line in output.splitlines()]


def test_restore_to_a_moment_between_two_commits(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(
        source,
        s3,
        bucket,
        tmp_path,
        ENCRYPTION_PASSPHRASE="pitr passphrase 1",
        # A tar of some 40 MiB: uploaded in parts while it is made when the upload keeps up
        # (on a busy machine pg_basebackup may finish first; the file then goes up whole).
        BACKUP_COMPRESSION="none",
    )
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 3)
        backup = run_moonflower("basebackup", env=env)
        assert backup.returncode == 0, backup.stderr
        commit_rows(source, 3, 12)
        times = archive_caught_up(s3, bucket, source)
    finally:
        assert streaming.stop() == 0, streaming.text()
    listing = run_moonflower("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    (base,) = [entry for entry in json.loads(listing.stdout) if entry.get("kind") == "base"]
    assert base["gap_at"] is None
    assert pendulum.parse(base["recoverable_to"]) >= times[-1][1]
    assert pendulum.parse(base["recoverable_from"]) <= times[3][1]
    last_kept = 8
    # Row n+1's insert starts at least 0.2 s after row n committed (pg_sleep in between):
    # 50 ms before it lies after that commit and before the next, however loaded the machine.
    target = times[last_kept + 1][1].subtract(microseconds=50_000)
    restore = run_moonflower(
        "restore-cluster",
        "--to",
        str(restore_dir),
        "--time",
        target.isoformat(),
        "--start",
        env=env,
    )
    assert restore.returncode == 0, restore.stderr
    assert "recovery stopping before commit" in restore.stderr
    restored = restored_rows(restore_dir, source.password)
    assert restored == list(range(last_kept + 1)), (restore.stderr, LAST_SERVER_LOG)


def test_latest_after_the_source_is_killed(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path, key_pair: KeyPair
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(
        source,
        s3,
        bucket,
        tmp_path,
        BACKUP_COMPRESSION="zstd",
        ENCRYPTION_PUBLIC_KEY=key_pair.public_base64,
    )
    backup = run_moonflower("basebackup", env=env)
    assert backup.returncode == 0, backup.stderr
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 25)
        times = commit_times(source)
        killed_at = pendulum.now("UTC")
        source.kill()
        # The supervisor noticed, and archived what it had received (its final round).
        assert eventually(lambda: "pg_receivewal stopped" in streaming.text(), 30)
    finally:
        streaming.stop()
    without_key = run_moonflower("verify", "--physical", env=env)
    assert without_key.returncode == 1
    assert "ENCRYPTION_PRIVATE_KEY: required to decrypt" in without_key.stderr
    env = {
        **env,
        "ENCRYPTION_PRIVATE_KEY": base64.b64encode(key_pair.secret_armored).decode(),
        "ENCRYPTION_PRIVATE_KEY_PASSPHRASE": key_pair.passphrase,
    }
    verified = run_moonflower("verify", "--physical", "--restore", env=env)
    assert verified.returncode == 0, verified.stderr
    assert "trial recovery of" in verified.stderr
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    rows = restored_rows(restore_dir, source.password)
    must_have = [n for n, moment in times if moment < killed_at.subtract(seconds=PUSH_SECONDS + 2)]
    assert must_have, "the test wrote too little before the kill"
    assert rows[: len(must_have)] == must_have, restore.stderr
    assert rows == [n for n, _ in times][: len(rows)]


def test_tampered_base_backup_is_refused_before_anything_starts(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path)
    assert run_moonflower("basebackup", env=env).returncode == 0
    client = s3.client()
    key = next(k for k in s3.keys(bucket) if "/base/" in k and "base.tar" in k)
    original = client.get_object(Bucket=bucket, Key=key)
    body = bytearray(original["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=original["Metadata"])
    verified = run_moonflower("verify", "--physical", env=env)
    assert verified.returncode == 1
    assert "does not match the SHA-256" in verified.stderr
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 1
    assert "does not match the SHA-256" in restore.stderr
    assert not any(restore_dir.iterdir())


def test_a_download_broken_mid_object_starts_over_and_restores(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    """The base backup streams from S3 into tar; when the stream breaks half-way, what was
    extracted goes and the object is downloaded whole, checked, and extracted again."""
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    commit_rows(source, 0, 3)
    assert run_moonflower("basebackup", env=env).returncode == 0
    broken: list[str] = []

    def break_the_first_download(request: Request) -> object:
        if request.method == "GET" and "/base.tar" in request.path and not broken:
            broken.append(request.path)
            return FORWARD_HALF
        return None

    with FaultProxy(s3.endpoint, [break_the_first_download]) as proxy:
        restore = run_moonflower(
            "restore-cluster",
            "--to",
            str(restore_dir),
            "--latest",
            "--start",
            env={**env, "S3_ENDPOINT": proxy.endpoint},
        )

    assert restore.returncode == 0, restore.stderr
    assert broken, "the base backup was never downloaded through the proxy"
    assert "downloading it whole instead" in restore.stderr
    assert restored_rows(restore_dir, source.password) == [0, 1, 2]


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


def archive_only_env(s3: S3Server, bucket: str, spool: Path) -> dict[str, str]:
    """wal-push and wal-fetch talk to S3 only: no PG_* setting is needed."""
    return {
        **s3.moonflower_env(bucket, "pitr"),
        "BACKUP_SPOOL_DIR": str(spool),
        "ENCRYPTION_PASSPHRASE": "archive passphrase",
    }


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


def test_prune_keeps_the_wal_the_kept_base_backup_needs(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        assert run_moonflower("basebackup", env=env).returncode == 0
        commit_rows(source, 0, 3)
        source.psql("SELECT pg_switch_wal()")
        assert run_moonflower("basebackup", env=env).returncode == 0
        commit_rows(source, 3, 3)
        source.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, source)
    finally:
        assert streaming.stop() == 0, streaming.text()
    bases_before = sorted({key.split("/")[2] for key in s3.keys(bucket) if "/base/" in key})
    assert len(bases_before) == 2
    segments_before = [int(k.split("/")[2][16:24], 16) for k in s3.keys(bucket) if "/wal/0" in k]

    pruned = run_moonflower("prune", env={**env, "S3_EXPIRES_IN": "1 second"})
    assert pruned.returncode == 0, pruned.stderr
    keys = s3.keys(bucket)
    assert sorted({key.split("/")[2] for key in keys if "/base/" in key}) == bases_before[1:]
    kept_start = json.loads(
        s3.client()
        .get_object(Bucket=bucket, Key=f"pitr/base/{bases_before[1]}/backup.json")["Body"]
        .read()
    )["start_lsn"]
    first_needed = int(kept_start.split("/")[1], 16) >> 24
    segments = [int(key.split("/")[2][16:24], 16) for key in keys if "/wal/0" in key]
    assert segments, "no WAL left at all"
    assert min(segments) >= first_needed
    assert min(segments_before) < first_needed  # there was older WAL, and it went

    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert restored_rows(restore_dir, source.password) == list(range(6))


def receivers_of(process: subprocess.Popen[bytes]) -> list[int]:
    return [
        int(pid)
        for pid in descendants(process.pid)
        if b"pg_receivewal" in read_proc(pid, "cmdline").split(b"\0")[0]
    ]


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


def test_latest_follows_a_failover_to_a_new_timeline(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    """The source's WAL, then a promoted copy of it (timeline 2) streaming into the same
    archive, as after a failover: a restore from the first base backup reaches the rows
    written on the new timeline."""
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path / "spool-1", BACKUP_COMPRESSION="zstd")
    (tmp_path / "spool-1").mkdir()
    assert run_moonflower("basebackup", env=env).returncode == 0
    streaming = Streaming(env, tmp_path / "run-1.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 5)
        source.kill()
        assert eventually(lambda: "pg_receivewal stopped" in streaming.text(), 30)
    finally:
        streaming.stop()

    promoted_dir = restore_dir
    failover = run_moonflower(
        "restore-cluster", "--to", str(promoted_dir), "--latest", "--start", env=env
    )
    assert failover.returncode == 0, failover.stderr
    with PgServer(password=source.password, data_dir=promoted_dir) as promoted:
        assert promoted.psql("SELECT timeline_id FROM pg_control_checkpoint()") == "2"
        (tmp_path / "spool-2").mkdir()
        env_2 = {
            **pitr_env(promoted, s3, bucket, tmp_path / "spool-2", BACKUP_COMPRESSION="zstd"),
        }
        stream_rows(env_2, tmp_path / "run-2.log", promoted, 5, s3, bucket)
    assert any(key.endswith("/00000002.history.zst") for key in s3.keys(bucket))

    final_dir = restore_dir.parent / "final"
    final_dir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(final_dir, UNPRIVILEGED, "nogroup")
    restore = run_moonflower(
        "restore-cluster", "--to", str(final_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert restored_rows(final_dir, source.password) == list(range(10))


def server_user_can_run_moonflower() -> bool:
    """As root, the server runs as `nobody`, which must be able to start bin/moonflower (a
    virtualenv made from an interpreter under /root is closed to it)."""
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
            *moonflower_command("--version"),
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_restore_with_moonflower_as_the_restore_command(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    if not server_user_can_run_moonflower():
        pytest.skip("the server's user cannot run this checkout's bin/moonflower")
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    assert run_moonflower("basebackup", env=env).returncode == 0
    stream_rows(env, tmp_path / "run.log", source, 0, s3, bucket)
    # The settings in a file the server's user can read: its environment has none of them.
    config = restore_dir.parent / "moonflower.toml"
    s3_env = s3.moonflower_env(bucket, "pitr")
    config.write_text(
        "[s3]\n"
        f'endpoint = "{s3_env["S3_ENDPOINT"]}"\n'
        f'region = "{s3_env["S3_REGION"]}"\n'
        f'bucket = "{bucket}"\n'
        'path = "pitr"\n'
        f'access_key = "{s3_env["S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{s3_env["S3_SECRET_KEY"]}"\n'
        "[backup]\n"
        'compression = "zstd"\n'
    )
    config.chmod(0o644)
    restore = run_moonflower(
        "restore-cluster",
        "--config",
        str(config),
        "--to",
        str(restore_dir),
        "--latest",
        "--wal-fetch-command",
        "--start",
        env={"PATH": os.environ["PATH"]},
    )
    assert restore.returncode == 0, restore.stderr
    settings = (restore_dir / "postgresql.auto.conf").read_text()
    assert f"--config {config} wal-fetch %f %p'" in settings
    assert not list((restore_dir / "pg_wal").glob("0000000100000000000000[3-9]"))
    assert restored_rows(restore_dir, source.password) == list(range(5))


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


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--time", "yesterday", '--time: "yesterday" is not a date and time'),
        ("--time", "2026-02-30 10:00:00", "--time: "),
        ("--lsn", "12", '--lsn: "12" is not a WAL position'),
    ],
)
def test_a_bad_target_is_refused_before_anything(
    s3: S3Server, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    env = archive_only_env(s3, s3.new_bucket(), tmp_path)
    target = tmp_path / "never"
    result = run_moonflower("restore-cluster", "--to", str(target), flag, value, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"moonflower: {message}")
    assert not target.exists()


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


def base_descriptions(s3: S3Server, bucket: str) -> list[dict[str, object]]:
    client = s3.client()
    keys = sorted(key for key in s3.keys(bucket) if key.endswith("/backup.json"))
    return [json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]


def test_incremental_base_backups_chain_restore_and_prune(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    """PostgreSQL 18 with summarize_wal: the second base backup stores only what changed,
    restore-cluster combines the chain, and prune keeps what a kept backup builds on."""
    bucket = s3.new_bucket()
    env = pitr_env(
        source, s3, bucket, tmp_path, BASEBACKUP_INCREMENTAL="on", BACKUP_COMPRESSION="zstd"
    )
    not_ready = run_moonflower("check", env=env)
    assert not_ready.returncode == 1
    assert "summarize_wal is off" in " ".join(not_ready.stdout.split())
    source.psql("ALTER SYSTEM SET summarize_wal = on")
    source.psql("SELECT pg_reload_conf()")
    ready = run_moonflower("check", env=env)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    source.psql(
        "CREATE TABLE bulk AS SELECT g, md5(g::text) AS m FROM generate_series(1, 200000) g",
        "app",
    )
    full = run_moonflower("basebackup", env=env)
    assert full.returncode == 0, full.stderr
    commit_rows(source, 0, 3)
    incremental = run_moonflower("basebackup", env=env)
    assert incremental.returncode == 0, incremental.stderr
    assert "incremental (on " in incremental.stderr

    first, second = base_descriptions(s3, bucket)
    assert first["parent"] is None
    assert first["chain_length"] == 1
    assert second["parent"] == first["label"]
    assert second["chain_length"] == 2
    assert isinstance(second["size"], int)
    assert isinstance(first["size"], int)
    assert second["size"] < first["size"] / 2, (first["size"], second["size"])

    dry = run_moonflower("prune", "--dry-run", "--json", "--keep-last", "1", env=env)
    assert dry.returncode == 0, dry.stderr
    [bases] = [s for s in json.loads(dry.stdout)["series"] if s["kind"] == "base"]
    reasons = {entry["key"]: entry["reasons"] for entry in bases["backups"]}
    assert reasons[first["label"]] == [f"needed by {second['label']}"]

    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert "combining" in restore.stderr
    assert restored_rows(restore_dir, source.password) == [0, 1, 2]

    forced = run_moonflower("basebackup", "--full", env=env)
    assert forced.returncode == 0, forced.stderr
    assert base_descriptions(s3, bucket)[-1]["chain_length"] == 1
