"""`make bench`: Moonflower against the floor (`pg_dump > /dev/null`) and the old tool's way.

Starts an embedded PostgreSQL and a local S3 server, builds a benchmark database, and for
several repetitions measures the median wall time of each case, the peak RSS of Moonflower's
Python process, and the object sizes. BENCH_ROWS (default 1,500,000, about 350 MB on disk)
and BENCH_REPEATS (default 3) adjust it; BENCH_ONLY_MORE=1 runs only the measurements of
scripts/bench_more.py. Prints Markdown tables for BENCHMARKS.md.

Diagnostics come with it: the bare `pg_dump | zstd -T0 -3` and `pg_dump | igzip -1`
pipelines into a file (what compression alone costs on this machine), and the CPU the local
S3 server spent during each Moonflower run (it runs in this process and competes for the
same cores). Peak RSS is also measured on a small database (BENCH_SMALL_ROWS, default
200,000 rows, about 55 MB), to show how it grows with the size of the database. BACKUP_JOBS
is compared twice: against the local S3 server as it is, and with every request delayed by
20 ms, as for an S3 store in another data centre. Then `scripts/bench_more.py` measures
start-up, Moonflower's own CPU, many small databases and restores.
"""

import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.support.faultproxy import FaultProxy, Request  # noqa: E402
from tests.support.pgserver import PgServer  # noqa: E402
from tests.support.runner import clean_environment, moonflower_command  # noqa: E402
from tests.support.s3server import S3Server  # noqa: E402

sys.path.insert(0, str(CHECKOUT / "scripts"))
from bench_more import run_all  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1500000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SMALL_ROWS = int(os.environ.get("BENCH_SMALL_ROWS", "200000"))
SMALL_DATABASES = 20
DISTANT_S3_SECONDS = 0.02
"""Added to every request in the second BACKUP_JOBS comparison: S3 in another data centre."""
PASSPHRASE = "benchmark passphrase"
TIMEOUT_SECONDS = 1800
FILL = """
CREATE TABLE bench (
    id bigint PRIMARY KEY, name text, body text, attrs jsonb, amount numeric(12, 2),
    created timestamptz
);
INSERT INTO bench
SELECT n, md5(n::text), repeat(md5((n * 31)::text), 2) || ' ' || (n % 977)::text,
       jsonb_build_object('n', n, 'tag', md5((n % 1000)::text), 'ok', n % 3 = 0),
       (n * 7.31) % 100000, timestamptz '2026-01-01' + n * interval '1 second'
FROM generate_series(1, {rows}) AS n;
"""


@dataclass
class Case:
    name: str
    seconds: list[float] = field(default_factory=list)
    peak_rss: int = 0
    small_peak_rss: int = 0
    size: int = 0
    server_cpu: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    """Cores busy on average during each run (all processes of the machine)."""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def measured(self, measure: Callable[[], float]) -> float:
        """Run `measure` (which returns its wall seconds), noting how busy the cores were."""
        before = machine_busy_seconds()
        seconds = measure()
        self.busy.append((machine_busy_seconds() - before) / seconds)
        self.seconds.append(seconds)
        return seconds


def machine_busy_seconds() -> float:
    """CPU-seconds all cores have spent not idle since boot (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], env: dict[str, str], stdout: object = subprocess.DEVNULL) -> float:
    started = time.monotonic()
    subprocess.run(
        command,
        env=env,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=TIMEOUT_SECONDS,
    )
    return time.monotonic() - started


def peak_rss_of(process: subprocess.Popen[bytes]) -> int:
    """Poll VmHWM (the peak resident set) of the process until it exits; bytes."""
    peak = 0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.02)
    return peak


def own_cpu_seconds() -> float:
    """CPU time of this process: the S3 server's threads, mostly."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_moonflower(env: dict[str, str]) -> tuple[float, int]:
    started = time.monotonic()
    process = subprocess.Popen(
        moonflower_command("backup"),
        env=clean_environment(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = peak_rss_of(process)
    if process.wait(timeout=TIMEOUT_SECONDS) != 0:
        raise RuntimeError("bin/moonflower failed during the benchmark")
    return time.monotonic() - started, peak


def upload(s3: S3Server, bucket: str, path: Path, key: str) -> None:
    s3.client().upload_file(str(path), bucket, key)


def old_tool(pg: PgServer, s3: S3Server, bucket: str, scratch: Path, encrypted: bool) -> float:
    """The original image's way: pg_dump -Z 5 (or pg_dump | gpg with its compression), then
    upload the file."""
    target = scratch / "old.dump"
    started = time.monotonic()
    env = pg.client_env("bench")
    if encrypted:
        with target.open("wb") as output:
            dump = subprocess.Popen([pg.tool("pg_dump")], env=env, stdout=subprocess.PIPE)
            home = tempfile.mkdtemp(dir=scratch)
            subprocess.run(
                [
                    "gpg",
                    "--homedir",
                    home,
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    PASSPHRASE,
                    "--symmetric",
                ],
                stdin=dump.stdout,
                stdout=output,
                check=True,
                timeout=TIMEOUT_SECONDS,
            )
            dump.wait(timeout=TIMEOUT_SECONDS)
    else:
        subprocess.run(
            [pg.tool("pg_dump"), "-Z", "5", "-f", str(target)],
            env=env,
            check=True,
            timeout=TIMEOUT_SECONDS,
        )
    folder = "old-encrypted" if encrypted else "old"
    upload(s3, bucket, target, f"{folder}/bench_{time.time()}.sql")
    return time.monotonic() - started


def pipeline_only(pg: PgServer, scratch: Path, compressor: list[str]) -> float:
    """`pg_dump | compressor > file`, no upload: compression's own cost here."""
    target = scratch / "pipeline.out"
    started = time.monotonic()
    with target.open("wb") as output:
        dump = subprocess.Popen(
            [pg.tool("pg_dump")], env=pg.client_env("bench"), stdout=subprocess.PIPE
        )
        subprocess.run(
            compressor,
            stdin=dump.stdout,
            stdout=output,
            check=True,
            timeout=TIMEOUT_SECONDS,
        )
        assert dump.stdout is not None
        dump.stdout.close()
        if dump.wait(timeout=TIMEOUT_SECONDS) != 0:
            raise RuntimeError("pg_dump failed during the benchmark")
    seconds = time.monotonic() - started
    target.unlink()
    return seconds


def repeat(case: Case, measure: Callable[[], float]) -> Case:
    for _ in range(REPEATS):
        case.measured(measure)
    return case


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with PgServer() as pg, S3Server() as s3, tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        print(f"building the benchmark database ({ROWS:,} rows)...", flush=True)
        for name, rows in (("bench", ROWS), ("bench_small", SMALL_ROWS)):
            pg.create_database(name)
            pg.psql(FILL.format(rows=rows), name)
            pg.psql("VACUUM ANALYZE bench", name)
        db_size = int(pg.psql("SELECT pg_database_size('bench')"))
        small_size = int(pg.psql("SELECT pg_database_size('bench_small')"))
        bucket = s3.new_bucket()
        base = {**pg.moonflower_env("bench"), **s3.moonflower_env(bucket, "bench")}
        # A status file of its own: the shared default one keeps every database any earlier
        # run backed up (the 200 small ones too), and each run reads and rewrites it.
        base["BACKUP_STATE_DIR"] = str(scratch / "state")
        (scratch / "state").mkdir(mode=0o700)
        cases: list[Case] = []
        if os.environ.get("BENCH_ONLY_MORE"):  # just scripts/bench_more.py's measurements
            run_moonflower(base)  # the default gzip backup that the restores start from
            run_all(pg, s3, bucket, base, scratch, REPEATS)
            return 0

        floor = repeat(
            Case("pg_dump > /dev/null (floor)"),
            lambda: timed([pg.tool("pg_dump")], pg.client_env("bench")),
        )
        old_plain = repeat(
            Case("old tool: pg_dump -Z 5, then upload"),
            lambda: old_tool(pg, s3, bucket, scratch, encrypted=False),
        )
        old_encrypted = repeat(
            Case("old tool: pg_dump \\| gpg, then upload"),
            lambda: old_tool(pg, s3, bucket, scratch, encrypted=True),
        )
        pipeline = repeat(
            Case("pg_dump \\| zstd -T0 -3 > file, no upload (bare pipeline)"),
            lambda: pipeline_only(pg, scratch, ["zstd", "-c", "-q", "-3", "-T0"]),
        )
        igzip_pipeline = repeat(
            Case("pg_dump \\| igzip -1 > file, no upload (bare pipeline)"),
            lambda: pipeline_only(pg, scratch, ["igzip", "-c", "-1"]),
        )
        cases += [floor, old_plain, old_encrypted, pipeline, igzip_pipeline]
        variants = {
            "moonflower gzip": {},
            "moonflower zstd": {"BACKUP_COMPRESSION": "zstd"},
            "moonflower zstd + passphrase": {
                "BACKUP_COMPRESSION": "zstd",
                "ENCRYPTION_PASSPHRASE": PASSPHRASE,
            },
        }
        for name, extra in variants.items():
            case = Case(name)
            for _ in range(REPEATS):
                cpu_before = own_cpu_seconds()
                peaks: list[int] = []

                def backup(extra: dict[str, str] = extra, peaks: list[int] = peaks) -> float:
                    seconds, peak = run_moonflower({**base, **extra})
                    peaks.append(peak)
                    return seconds

                case.measured(backup)
                case.server_cpu.append(own_cpu_seconds() - cpu_before)
                case.peak_rss = max(case.peak_rss, *peaks)
                _, small_peak = run_moonflower({**base, **extra, "PG_DATABASES": "bench_small"})
                case.small_peak_rss = max(case.small_peak_rss, small_peak)
            cases.append(case)
        sizes = {
            item["Key"]: item["Size"]
            for item in s3.client().list_objects_v2(Bucket=bucket, Prefix="bench/bench_2")[
                "Contents"
            ]
        }
        old_sizes = {"old/": ".gz", "old-encrypted/": ".gpg"}
        for case, prefix in zip((old_plain, old_encrypted), old_sizes, strict=True):
            listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
            case.size = max(item["Size"] for item in listing)
        for case, ending in zip(cases[5:], (".sql.gz", ".sql.zst", ".sql.zst.gpg"), strict=True):
            case.size = max(size for key, size in sizes.items() if key.endswith(ending))

        small = [f"small_{number:02d}" for number in range(SMALL_DATABASES)]
        for name in small:
            pg.create_database(name)
            pg.psql(
                "CREATE TABLE t AS SELECT n, md5(n::text) FROM generate_series(1, 20000) n", name
            )
        jobs = jobs_cases(base, small, "")
        with FaultProxy(s3.endpoint, rules=[delayed]) as distant:
            distant_jobs = jobs_cases(
                {**base, "S3_ENDPOINT": distant.endpoint},
                small,
                f", S3 {DISTANT_S3_SECONDS * 1000:.0f} ms away",
            )

        print_report(cases, jobs, floor, old_plain, old_encrypted, db_size)
        print_jobs(distant_jobs)
        print_memory_and_server(cases[5:], db_size, small_size)
        run_all(pg, s3, bucket, base, scratch, REPEATS)
    return 0


def delayed(request: Request) -> None:
    """A FaultProxy rule that answers nothing itself: every request just arrives later."""
    time.sleep(DISTANT_S3_SECONDS)


def jobs_cases(base: dict[str, str], databases: list[str], where: str) -> dict[int, Case]:
    jobs: dict[int, Case] = {}
    for count in (1, 4):
        env = {**base, "PG_DATABASES": " ".join(databases), "BACKUP_JOBS": str(count)}
        jobs[count] = repeat(
            Case(f"{SMALL_DATABASES} small databases{where}, BACKUP_JOBS={count}"),
            lambda env=env: run_moonflower(env)[0],
        )
    return jobs


def print_report(
    cases: list[Case],
    jobs: dict[int, Case],
    floor: Case,
    old_plain: Case,
    old_encrypted: Case,
    db_size: int,
) -> None:
    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; database {db_size / 2**20:.0f} MiB on disk, "
        f"{ROWS:,} rows; median of {REPEATS} runs.\n"
    )
    print("| case | median s | x floor | x old tool | peak RSS | object | cores busy |")
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        old = old_encrypted if "passphrase" in case.name or "\\| gpg" in case.name else old_plain
        rss = f"{case.peak_rss / 2**20:.0f} MiB" if case.peak_rss else "-"
        size = f"{case.size / 2**20:.0f} MiB" if case.size else "-"
        busy = f"{statistics.median(case.busy):.2f} of {os.cpu_count()}" if case.busy else "-"
        print(
            f"| {case.name} | {case.median:.2f} | {case.median / floor.median:.2f} | "
            f"{case.median / old.median:.2f} | {rss} | {size} | {busy} |"
        )
    print_jobs(jobs)


def print_jobs(jobs: dict[int, Case]) -> None:
    speedup = jobs[1].median / jobs[4].median
    print(f"| {jobs[1].name} | {jobs[1].median:.2f} | | | | |")
    print(f"| {jobs[4].name} | {jobs[4].median:.2f} | | | | ({speedup:.1f}x faster) |")


def print_memory_and_server(cases: list[Case], db_size: int, small_size: int) -> None:
    print(
        f"\n| case | peak RSS, {small_size / 2**20:.0f} MiB database | peak RSS, "
        f"{db_size / 2**20:.0f} MiB database | growth | S3 server CPU s (median) |"
    )
    print("|---|---|---|---|---|")
    for case in cases:
        growth = case.peak_rss / case.small_peak_rss - 1
        print(
            f"| {case.name} | {case.small_peak_rss / 2**20:.1f} MiB | "
            f"{case.peak_rss / 2**20:.1f} MiB | {growth:+.1%} | "
            f"{statistics.median(case.server_cpu):.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
