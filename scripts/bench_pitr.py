"""Point-in-time recovery benchmarks (run by `make bench` after scripts/bench.py):

- RTO: `restore-cluster --latest --start` against the logical `moonflower restore` of the
  same database (the benchmark database, BENCH_ROWS rows);
- the base backup: wall time and object size with zstd;
- RPO: the age of the newest restorable commit when the source is killed (`kill -9` of the
  postmaster, its data directory treated as lost), at a light write load (a row every
  0.2 s) and a heavy one (pgbench), BENCH_PITR_KILLS kills each;
- the supervisor's own cost while streaming: CPU seconds per GiB of WAL, and RSS.

Prints Markdown tables for BENCHMARKS.md.
"""

import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))
sys.path.insert(0, str(CHECKOUT / "scripts"))

from bench import FILL, ROWS  # noqa: E402

from tests.support.pgserver import PgServer  # noqa: E402
from tests.support.runner import clean_environment, moonflower_command  # noqa: E402
from tests.support.s3server import S3Server  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402

KILLS = int(os.environ.get("BENCH_PITR_KILLS", "3"))
LOAD_SECONDS = 8.0
PUSH_SECONDS = "5"
CATCH_UP_SECONDS = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


STEPS = re.compile(r"restore-cluster took (.*)")
RTO_REPEATS = int(os.environ.get("BENCH_PITR_RTO_REPEATS", "3"))
ONLY_INCREMENTAL = bool(os.environ.get("BENCH_PITR_ONLY_INCREMENTAL"))
FILL_MORE = """
INSERT INTO bench
SELECT n, md5(n::text), repeat(md5((n * 31)::text), 2) || ' ' || (n % 977)::text,
       jsonb_build_object('n', n, 'tag', md5((n % 1000)::text), 'ok', n % 3 = 0),
       (n * 7.31) % 100000, timestamptz '2026-01-01' + n * interval '1 second'
FROM generate_series({first}, {last}) AS n;
"""


def moonflower(*args: str, env: dict[str, str], steps: list[str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(
        moonflower_command(*args), env=clean_environment(env), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"moonflower {' '.join(args)} failed: {result.stderr[-2000:]}")
    if steps is not None:
        steps += STEPS.findall(result.stderr)
    return time.monotonic() - started


def physical_restore(env: dict[str, str], steps: list[str]) -> float:
    target = scratch_data_dir()
    try:
        return moonflower(
            "restore-cluster", "--to", str(target), "--latest", "--start", env=env, steps=steps
        )
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)


def scratch_data_dir() -> Path:
    parent = Path(tempfile.mkdtemp(prefix="mf-bench-pitr-"))
    parent.chmod(0o755)
    target = parent / "data"
    target.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(target, "nobody", "nogroup")
    return target


def rto(pg: PgServer, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    env = {
        **pg.moonflower_env("bench"),
        **s3.moonflower_env(bucket, "rto"),
        "BACKUP_COMPRESSION": "zstd",
    }
    if ONLY_INCREMENTAL:
        incremental(pg, env)
        return
    base_seconds = moonflower("basebackup", env=env)
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="rto/base/")["Contents"]
    base_size = sum(item["Size"] for item in listing if "base.tar" in item["Key"])
    moonflower("backup", env=env)
    steps: list[str] = []
    physical = statistics.median(physical_restore(env, steps) for _ in range(RTO_REPEATS))
    logical = moonflower("restore", "bench", "--into", "bench_restored", env=env)
    gzip_env = {**env, "BACKUP_COMPRESSION": "gzip"}  # the default of logical backups
    moonflower("backup", env=gzip_env)
    logical_gzip = moonflower("restore", "bench", "--into", "bench_restored_gz", env=gzip_env)
    db_size = int(pg.psql("SELECT pg_database_size('bench')"))
    print(f"\n| recovery of the benchmark database ({db_size / 2**20:.0f} MiB) | s |")
    print("|---|---|")
    print(f"| base backup, zstd ({base_size / 2**20:.0f} MiB object) | {base_seconds:.2f} |")
    print(
        f"| restore-cluster --latest --start (physical, median of {RTO_REPEATS}) | {physical:.2f} |"
    )
    print(f"| moonflower restore (logical, zstd) | {logical:.2f} |")
    print(f"| moonflower restore (logical, gzip, the default) | {logical_gzip:.2f} |")
    print(
        f"| physical against logical zstd, gzip | {logical / physical:.1f}x, "
        f"{logical_gzip / physical:.1f}x |"
    )
    for line in steps:
        print(f"restore-cluster steps: {line}")
    incremental(pg, env)


def base_sizes(env: dict[str, str]) -> list[int]:
    """The size of each base backup, oldest first (from `list --json`)."""
    result = subprocess.run(
        moonflower_command("list", "--json"),
        env=clean_environment(env),
        capture_output=True,
        text=True,
        check=True,
    )
    listing = json.loads(result.stdout)
    return [int(entry["size"]) for entry in reversed(listing) if entry.get("kind") == "base"]


def incremental(pg: PgServer, env: dict[str, str]) -> None:
    """A full base backup with summarize_wal on, 1% of the rows changed, an incremental one,
    and a restore that combines the two."""
    for scratch in ("bench_restored", "bench_restored_gz"):  # left by the logical restores
        pg.psql(f"DROP DATABASE IF EXISTS {scratch}")
    pg.psql("ALTER SYSTEM SET summarize_wal = on")
    pg.psql("SELECT pg_reload_conf()")
    chained = {**env, "BASEBACKUP_INCREMENTAL": "on"}
    full_seconds = moonflower("basebackup", "--full", env=chained)
    # A day's work touches recent rows: 1% of them changed, 1% added.
    pg.psql(f"UPDATE bench SET amount = amount + 1 WHERE id > {ROWS - ROWS // 100}", "bench")
    pg.psql(FILL_MORE.format(first=ROWS + 1, last=ROWS + ROWS // 100), "bench")
    pg.psql("CHECKPOINT")
    incremental_seconds = moonflower("basebackup", env=chained)
    full_size, incremental_size = base_sizes(chained)[-2:]
    steps: list[str] = []
    combined = physical_restore(chained, steps)
    print("\n| incremental base backup (1% of the rows changed, 1% added) | s | object |")
    print("|---|---|---|")
    print(f"| full, with the manifest kept | {full_seconds:.2f} | {full_size / 2**20:.1f} MiB |")
    print(f"| incremental on it | {incremental_seconds:.2f} | {incremental_size / 2**20:.1f} MiB |")
    print(f"| restore-cluster of the chain (combined) | {combined:.2f} | |")
    for line in steps:
        print(f"restore-cluster steps (chain): {line}")


class Writer(threading.Thread):
    """A row a fifth of a second, each its own transaction, until stopped."""

    def __init__(self, pg: PgServer) -> None:
        super().__init__(daemon=True)
        self.pg = pg
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                self.pg.psql(f"INSERT INTO stamps VALUES ({n}, clock_timestamp())", "app")
            except RuntimeError:
                return  # the server was killed
            n += 1
            self.stop.wait(0.2)


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def caught_up(pg: PgServer, s3: S3Server, bucket: str) -> None:
    """Wait until the archive holds the segment being written now (after a switch)."""
    segment = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    pg.psql("SELECT pg_switch_wal()")
    eventually(
        lambda: any(f"/wal/{segment}" in key and ".partial" not in key for key in s3.keys(bucket)),
        CATCH_UP_SECONDS,
    )


def one_kill(
    s3: S3Server, heavy: bool, host: bool = False, extra: dict[str, str] | None = None
) -> tuple[float, float | None, int]:
    """RPO in seconds for one kill; the supervisor's CPU per GiB of WAL and its RSS. With
    `host`, Moonflower (and its pg_receivewal) is killed at the same moment as the server:
    the whole host is lost, and only what already reached S3 counts. `extra`: more settings
    (a replica's)."""
    with PgServer() as pg, tempfile.TemporaryDirectory() as spool:
        pg.create_database("app")
        pg.psql("CREATE TABLE stamps (n int, at timestamptz)", "app")
        bucket = s3.new_bucket()
        env = {
            **pg.moonflower_env("app"),
            **s3.moonflower_env(bucket, "rpo"),
            "BACKUP_SPOOL_DIR": spool,
            "BACKUP_COMPRESSION": "zstd",
            "WAL_STREAM": "on",
            "WAL_PUSH_INTERVAL": PUSH_SECONDS,
            **(extra or {}),
        }
        moonflower("basebackup", env=env)
        log_path = Path(spool) / "run.log"
        with log_path.open("w") as log_file:
            run = subprocess.Popen(
                moonflower_command("run"),
                env=clean_environment(env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        eventually(lambda: "WAL streaming started" in log_path.read_text(), 60)
        start_lsn = pg.psql("SELECT pg_current_wal_lsn()")
        cpu_before = process_cpu(run.pid)
        load = None
        if heavy:
            subprocess.run(
                [pg.tool("pgbench"), "-i", "-s", "10", "-q"],
                env=pg.client_env("app"),
                capture_output=True,
                check=True,
            )
            caught_up(pg, s3, bucket)  # the measured load starts from an archive in step
            load = subprocess.Popen(
                [pg.tool("pgbench"), "-c", "2", "-T", str(int(LOAD_SECONDS) + 5), "-n"],
                env=pg.client_env("app"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        writer = Writer(pg)
        writer_started = time.time()
        writer.start()
        time.sleep(LOAD_SECONDS)  # the load runs for a fixed time: this is what is measured
        wal_bytes = int(pg.psql(f"SELECT pg_current_wal_lsn() - '{start_lsn}'::pg_lsn"))
        rss = process_rss(run.pid)
        cpu = process_cpu(run.pid) - cpu_before
        killed_at = time.time()
        if host:
            os.killpg(run.pid, signal.SIGKILL)
        pg.kill()
        writer.stop.set()
        writer.join(30)
        if load is not None:
            load.wait(60)
        if not host:
            eventually(lambda: "pg_receivewal stopped" in log_path.read_text(), 60)
            cpu = process_cpu(run.pid) - cpu_before
            run.terminate()
        run.wait(60)
        target = scratch_data_dir()
        moonflower("restore-cluster", "--to", str(target), "--latest", "--start", env=env)
        with PgServer(password=pg.password, data_dir=target) as restored:
            found = restored.psql("SELECT extract(epoch FROM max(at)) FROM stamps", "app")
        # No row of the load restored: all of it was lost (the archive was behind).
        newest = float(found) if found else writer_started
        shutil.rmtree(target.parent, ignore_errors=True)
        per_gib = cpu / (wal_bytes / 2**30) if wal_bytes > 2**24 else None
        return killed_at - newest, per_gib, rss


def rpo(s3: S3Server) -> None:
    print(
        f"\n| RPO, kill -9 of what is lost (WAL_PUSH_INTERVAL={PUSH_SECONDS} s, {KILLS} kills) "
        "| median s "
        "| worst s | supervisor CPU s per GiB of WAL | supervisor RSS MiB |"
    )
    print("|---|---|---|---|---|")
    for host in (False, True):
        for heavy in (False, True):
            samples = [one_kill(s3, heavy, host) for _ in range(KILLS)]
            ages = [age for age, _, _ in samples]
            costs = [cost for _, cost, _ in samples if cost is not None]
            cost = f"{statistics.median(costs):.1f}" if costs else "-"
            rss = max(sample[2] for sample in samples) / 2**20
            load = "heavy (pgbench -c 2)" if heavy else "light (5 rows/s)"
            lost = "the host (server and Moonflower)" if host else "the server"
            print(
                f"| {lost}, {load} | {statistics.median(ages):.2f} | {max(ages):.2f} | {cost} "
                f"| {rss:.0f} |"
            )


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with S3Server() as s3:
        if not os.environ.get("BENCH_PITR_SKIP_RTO"):
            with PgServer() as pg:
                print(f"building the benchmark database ({ROWS:,} rows)...", flush=True)
                pg.create_database("bench")
                pg.psql(FILL.format(rows=ROWS), "bench")
                pg.psql("VACUUM ANALYZE bench", "bench")
                rto(pg, s3)
        if not ONLY_INCREMENTAL:
            rpo(s3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
