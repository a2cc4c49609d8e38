"""Faults injected for real: flaky and dead S3, a dying PostgreSQL, a full disk, SIGKILL.

Every scenario checks the promise: a complete, restorable backup, or a loud failure with
nothing half-made left behind (no object, no parts, no spool file) and no secret leaked.
"""

import gzip
import random
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import NASTY_DATABASE
from tests.support.faultproxy import RESET, FaultProxy, Reply, Request, s3_error
from tests.support.pgserver import PgServer
from tests.support.runner import (
    clean_environment,
    moonflower_command,
    run_moonflower,
    start_moonflower,
)
from tests.support.s3server import SECRET_KEY, S3Server
from tests.support.slowdump import (
    fake_pg_dump,
    kill_mid_upload,
    slow_dumps_running,
    use_slow_pg_dump,
    wait_until_dumping,
)
from tests.support.waiting import eventually
from tests.support.webhookserver import WebhookReceiver

pytestmark = pytest.mark.faults
BOUND_SECONDS = 120


def sql_of(s3: S3Server, bucket: str, key: str) -> bytes:
    body = gzip.decompress(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    return b"\n".join(
        line for line in body.splitlines() if not line.startswith((b"\\restrict", b"\\unrestrict"))
    )


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


def test_flaky_s3_still_gives_byte_identical_backups(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    proxy: FaultProxy,
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    clean = run_moonflower(env={**backup_env, "PG_DATABASES": NASTY_DATABASE})
    assert clean.returncode == 0, clean.stderr
    [clean_key] = s3.keys(bucket)
    chance = random.Random(20261126)
    injected: list[str] = []

    def flaky(request: Request) -> Reply | None:
        roll = chance.random()
        if roll < 0.30:
            injected.append(f"{request.method} {request.path}")
        if roll < 0.12:
            return s3_error(503, "SlowDown", "reduce your request rate")
        if roll < 0.20:
            return s3_error(500, "InternalError", "we encountered an internal error")
        if roll < 0.26:
            return RESET
        if roll < 0.30:
            time.sleep(1.5)
        return None

    proxy.rules.append(flaky)
    env = {
        **backup_env,
        "S3_ENDPOINT": proxy.endpoint,
        "S3_MAX_ATTEMPTS": "12",
        "PG_DATABASES": f"{NASTY_DATABASE} {big_database}",
        "PG_DUMP_PATH": pausing_pg_dump,
    }

    result = run_moonflower(env=env, timeout=BOUND_SECONDS * 3)

    assert result.returncode == 0, result.stderr
    assert len(injected) >= 3, "too few faults were injected to prove anything"
    keys = [key for key in s3.keys(bucket) if key != clean_key]
    nasty_key = next(key for key in keys if key.split("/")[-1].startswith(NASTY_DATABASE))
    assert sql_of(s3, bucket, nasty_key) == sql_of(s3, bucket, clean_key)
    assert s3.no_uploads_left(bucket)
    assert_no_secrets(result.stderr + result.stdout, SECRET_KEY, backup_env["PG_PASSWORD"])


def test_s3_going_down_mid_upload_fails_cleanly_and_the_next_run_tidies_up(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    proxy: FaultProxy,
    spool_dir: Path,
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    down = threading.Event()

    def outage(request: Request) -> Reply | None:
        if request.method == "POST" and "uploads" in request.path:
            threading.Timer(0.1, down.set).start()  # down right after the upload starts
            return None
        return RESET if down.is_set() else None

    proxy.rules.append(outage)
    with WebhookReceiver() as receiver:
        env = {
            **backup_env,
            "S3_ENDPOINT": proxy.endpoint,
            "S3_MAX_ATTEMPTS": "2",
            "PG_DATABASES": big_database,
            "PG_DUMP_PATH": pausing_pg_dump,
            "BACKUP_COMPRESSION": "none",
            "WEBHOOK_FAILURE": receiver.url("/fail"),
            "WEBHOOK_POST_LOGS": "1",
        }
        started = time.monotonic()
        result = run_moonflower(env=env, timeout=BOUND_SECONDS)
        elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert elapsed < BOUND_SECONDS
    assert receiver.paths() == ["/fail"]
    secrets = (SECRET_KEY, backup_env["PG_PASSWORD"])
    assert_no_secrets(result.stderr + receiver.received[0].body.decode(), *secrets)
    assert s3.keys(bucket) == []
    assert list(spool_dir.iterdir()) == []
    journal = Path(backup_env["BACKUP_STATE_DIR"]) / "moonflower-uploads.journal"
    assert journal.exists(), "the unfinished upload was not written to the journal"

    proxy.rules.clear()  # S3 is back
    again = run_moonflower(env={**env, "PG_DATABASES": "second", "WEBHOOK_FAILURE": ""})

    assert again.returncode == 0, again.stderr
    assert "left by a killed run" in again.stderr
    assert s3.no_uploads_left(bucket)
    assert list(spool_dir.iterdir()) == []


def test_postgres_killing_the_dump_fails_only_that_database(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    spool_dir: Path,
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    stop = threading.Event()
    terminated: list[str] = []

    def dump_terminated() -> bool:
        killed = pg.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{big_database}' AND query LIKE 'COPY%'"
        )
        if killed != "0":
            terminated.append(killed)
        return bool(terminated)

    def terminate_the_dump() -> None:
        eventually(lambda: stop.is_set() or dump_terminated(), BOUND_SECONDS)

    killer = threading.Thread(target=terminate_the_dump)
    killer.start()
    try:
        result = run_moonflower(
            env={
                **backup_env,
                "PG_DATABASES": f"{big_database} second",
                "PG_DUMP_PATH": pausing_pg_dump,
                "BACKUP_COMPRESSION": "none",
            },
            timeout=BOUND_SECONDS,
        )
    finally:
        stop.set()
        killer.join()

    assert terminated, "the dump's connection was never seen, so nothing was proven"
    assert result.returncode == 1, result.stderr
    assert_no_secrets(result.stderr, SECRET_KEY, backup_env["PG_PASSWORD"])
    assert f"backup failed for 1 database(s): {big_database}" in result.stderr
    assert "terminating connection" in result.stderr or "server closed" in result.stderr
    keys = s3.keys(bucket)
    assert len(keys) == 1
    assert keys[0].split("/")[-1].startswith("second_")
    assert s3.no_uploads_left(bucket)
    assert list(spool_dir.iterdir()) == []


def limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_spool_disk_is_named_and_leaves_nothing(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path
) -> None:
    process = subprocess.run(
        moonflower_command(),
        env=clean_environment(backup_env),
        capture_output=True,
        text=True,
        timeout=BOUND_SECONDS,
        check=False,
        preexec_fn=lambda: limit_file_size(100_000),
    )

    assert process.returncode == 1
    assert f"spool directory {spool_dir}" in process.stderr
    assert_no_secrets(process.stderr, SECRET_KEY, backup_env["PG_PASSWORD"])
    assert s3.keys(bucket) == []
    assert list(spool_dir.iterdir()) == []


def test_after_sigkill_the_next_start_removes_what_was_left(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    spool_dir: Path,
    tmp_path: Path,
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    env = {
        **backup_env,
        "PG_DATABASES": big_database,
        "PG_DUMP_PATH": pausing_pg_dump,
        "BACKUP_COMPRESSION": "none",
    }
    kill_mid_upload(s3, bucket, env)
    subprocess.run(["pkill", "-f", pausing_pg_dump], check=False)
    left = sorted(path.name for path in spool_dir.iterdir())
    assert any(name.endswith(".part") for name in left)
    assert any(name.endswith(".pgpass") for name in left)

    result = run_moonflower(env={**backup_env, "PG_DATABASES": "second"})

    assert result.returncode == 0, result.stderr
    assert "left behind by a Moonflower process that was killed" in result.stderr
    assert s3.no_uploads_left(bucket)
    assert list(spool_dir.iterdir()) == []


def test_a_dump_that_writes_nothing_is_a_failure(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    silent = fake_pg_dump(tmp_path, "exit 0\n")

    result = run_moonflower(env={**backup_env, "PG_DUMP_PATH": str(silent)})

    assert result.returncode == 1
    assert "pg_dump wrote nothing" in result.stderr
    assert_no_secrets(result.stderr, SECRET_KEY, backup_env["PG_PASSWORD"])
    assert s3.keys(bucket) == []
    assert list(spool_dir.iterdir()) == []


def test_spool_files_and_gnupg_homes_are_private_while_they_exist(
    backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    use_slow_pg_dump(backup_env, tmp_path)
    env = {
        **backup_env,
        "PG_DATABASES": "second",
        "ENCRYPTION_PASSPHRASE": "private enough",
        "TMPDIR": str(private_tmp),
    }
    process = start_moonflower(env=env, quiet=True)
    try:
        assert wait_until_dumping(spool_dir)
        modes = {path.name: path.stat().st_mode & 0o777 for path in spool_dir.iterdir()}
        homes = [
            path.stat().st_mode & 0o777
            for path in private_tmp.iterdir()
            if path.name.startswith("moonflower-gnupg-")
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=BOUND_SECONDS)

    assert modes, "nothing in the spool directory"
    assert all(mode == 0o600 for mode in modes.values()), modes
    assert homes == [0o700]
    assert [p for p in private_tmp.iterdir() if p.name.startswith("moonflower-gnupg-")] == []
    assert slow_dumps_running() == []


ODD_NAMES = ["with space", "quote'name", 'double"quote', "dash-name", "ünïcødé ☃", "-f/etc/passwd"]


def test_odd_database_names_are_names_not_options_nor_paths(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path
) -> None:
    import json

    for name in ODD_NAMES:
        pg.create_database(name)
        pg.psql("CREATE TABLE marker (x int); INSERT INTO marker VALUES (7);", name)
    passwd_before = Path("/etc/passwd").stat().st_mtime_ns
    config = tmp_path / "odd.toml"
    config.write_text("[postgres]\ndatabases = " + json.dumps(ODD_NAMES, ensure_ascii=False) + "\n")
    env = {key: value for key, value in backup_env.items() if key != "PG_DATABASES"}

    result = run_moonflower("--config", str(config), env=env)
    listed = run_moonflower("--config", str(config), "list", "--json", env=env)

    assert result.returncode == 0, result.stderr
    assert Path("/etc/passwd").stat().st_mtime_ns == passwd_before
    keys = s3.keys(bucket)
    assert len(keys) == len(ODD_NAMES)
    assert all(key.count("/") == 1 and key.startswith("nightly/") for key in keys)
    assert sorted(entry["database"] for entry in json.loads(listed.stdout)) == sorted(ODD_NAMES)
    restored = run_moonflower(
        "--config",
        str(config),
        "restore",
        "--into",
        "odd_restored",
        "--",
        "-f/etc/passwd",
        env=env,
    )
    assert restored.returncode == 0, restored.stderr
    assert pg.psql("SELECT x FROM marker", "odd_restored") == "7"
