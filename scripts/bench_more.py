"""The second half of `make bench`: start-up, Moonflower's own CPU, many small databases, and
restores against the stock tools. `scripts/bench.py` calls `run_all` with its servers and
its benchmark database; each part prints a Markdown table for BENCHMARKS.md.
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.pgserver import PgServer
from tests.support.runner import clean_environment, moonflower_command
from tests.support.s3server import S3Server

TIMEOUT_SECONDS = 1800
SMALL_DATABASE_COUNT = int(os.environ.get("BENCH_MANY_DATABASES", "200"))
STARTUP_REPEATS = int(os.environ.get("BENCH_STARTUP_REPEATS", "7"))


@dataclass
class Sample:
    """One measured bin/moonflower run."""

    wall: float
    own_cpu: float
    """User + system CPU of Moonflower's Python process alone (its children excluded)."""
    stderr: str = ""


@dataclass
class Samples:
    runs: list[Sample] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


def process_cpu(pid: int) -> float | None:
    """utime + stime of one process (not of its children), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(*args: str, env: dict[str, str]) -> Sample:
    """Run bin/moonflower, sampling its own CPU until it exits (the last sample is at most a
    few milliseconds before the end)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:  # a pipe nobody reads while it runs would fill
        process = subprocess.Popen(
            moonflower_command(*args),
            env=clean_environment(env),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        cpu = 0.0
        while process.poll() is None:
            cpu = process_cpu(process.pid) or cpu
            time.sleep(0.003)
        log.seek(0)
        stderr = log.read()
    if process.returncode != 0:
        raise RuntimeError(f"bin/moonflower {' '.join(args)} failed: {stderr[-2000:]}")
    return Sample(time.monotonic() - started, cpu, stderr)


def stamping_pg_dump(pg: PgServer, directory: Path) -> tuple[Path, Path]:
    """A pg_dump that notes the moment it starts a dump (not `--version`), then is pg_dump."""
    stamp = directory / "pg_dump-started"
    wrapper = directory / "stamping" / "pg_dump"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" != "--version" ]; then date +%s.%N > "{stamp}"; fi\n'
        f'exec "{pg.tool("pg_dump")}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, stamp


def startup(pg: PgServer, base: dict[str, str], scratch: Path) -> None:
    """Process start to pg_dump running, and a tiny database end to end."""
    pg.create_database("bench_tiny")
    pg.psql("CREATE TABLE t AS SELECT n FROM generate_series(1, 100) AS n", "bench_tiny")
    wrapper, stamp = stamping_pg_dump(pg, scratch)
    env = {**base, "PG_DATABASES": "bench_tiny", "PG_DUMP_PATH": str(wrapper)}
    latencies, samples = [], Samples()
    for _ in range(STARTUP_REPEATS):
        launched = time.time()
        samples.runs.append(measured("backup", env=env))
        latencies.append(float(stamp.read_text()) - launched)
    print(f"\n| start-up (tiny database, median of {STARTUP_REPEATS}) | s |")
    print("|---|---|")
    print(f"| process start to pg_dump running | {statistics.median(latencies):.3f} |")
    print(f"| tiny database backed up end to end (wall) | {samples.median('wall'):.3f} |")
    print(f"| Moonflower's own CPU for it | {samples.median('own_cpu'):.3f} |")


FLOORS = (
    ("Python itself (`python -c pass`)", "pass"),
    ("`import sh` (the pipelines; it loads asyncio and importlib.metadata)", "import sh"),
    ("`import pendulum`", "import pendulum"),
    ("`import boto3`", "import boto3"),
    (
        "`import boto3` and an S3 client",
        "import boto3; boto3.session.Session().client('s3', region_name='us-east-1', "
        "endpoint_url='http://127.0.0.1:9')",
    ),
)


def child_cpu(argv: list[str]) -> float:
    """User + system CPU of one child process, run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=TIMEOUT_SECONDS)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def floors() -> None:
    """What a Python process with the mandated libraries costs before doing anything."""
    print(
        f"\n| what a Python process costs before it does anything (median of {STARTUP_REPEATS}) "
        "| CPU s |"
    )
    print("|---|---|")
    for name, code in FLOORS:
        cpu = [child_cpu([sys.executable, "-c", code]) for _ in range(STARTUP_REPEATS)]
        print(f"| {name} | {statistics.median(cpu):.3f} |")


def own_cpu(base: dict[str, str], repeats: int) -> None:
    """Moonflower's own CPU while backing up the benchmark database."""
    print("\n| benchmark database | wall s | Moonflower's own CPU s (user+system) |")
    print("|---|---|---|")
    for name, extra in (("gzip", {}), ("zstd", {"BACKUP_COMPRESSION": "zstd"})):
        samples = Samples([measured("backup", env={**base, **extra}) for _ in range(repeats)])
        print(f"| {name} | {samples.median('wall'):.2f} | {samples.median('own_cpu'):.2f} |")


def many_databases(s3: S3Server, scratch: Path, repeats: int) -> None:
    """PG_DATABASES=* on a server of its own with SMALL_DATABASE_COUNT small databases."""
    with PgServer() as pg:
        for number in range(SMALL_DATABASE_COUNT):
            name = f"small_{number:03d}"
            pg.create_database(name)
            pg.psql("CREATE TABLE t AS SELECT n, md5(n::text) FROM generate_series(1, 500) n", name)
        bucket = s3.new_bucket()
        base = {**pg.moonflower_env("*"), **s3.moonflower_env(bucket, "many")}
        base["BACKUP_STATE_DIR"] = str(scratch / "many-state")
        (scratch / "many-state").mkdir(mode=0o700)
        base["PG_EXCLUDE_DATABASES"] = "postgres"
        print(
            f"\n| {SMALL_DATABASE_COUNT} small databases, PG_DATABASES=* | wall s | "
            "per database ms | own CPU s |"
        )
        print("|---|---|---|---|")
        for jobs in (1, 4):
            env = {**base, "BACKUP_JOBS": str(jobs)}
            samples = Samples([measured("backup", env=env) for _ in range(repeats)])
            wall = samples.median("wall")
            print(
                f"| BACKUP_JOBS={jobs} | {wall:.2f} | {wall / SMALL_DATABASE_COUNT * 1000:.0f} | "
                f"{samples.median('own_cpu'):.2f} |"
            )


DOWNLOAD_COMMAND = (
    "import sys, boto3; from botocore.config import Config; "
    "boto3.client('s3', endpoint_url=sys.argv[1], config=Config(s3={'addressing_style': "
    "'path'})).download_file(sys.argv[2], sys.argv[3], sys.argv[4])"
)
"""The stock download as an operator runs it: a command (`aws s3 cp` is boto3 too, with
more to start), here a fresh Python process with boto3's download_file."""


@dataclass(frozen=True)
class StockRestore:
    """The stock way to restore into a new database, in seconds: a download, `createdb`,
    then `gzip -dc file | psql` into it."""

    load: float
    """createdb and gzip -dc | psql."""
    download_command: float
    """The download as a command (a process of its own, as `aws s3 cp`)."""
    download_in_process: float
    """The download by this process's boto3 client, already started."""


def stock_restore(pg: PgServer, s3: S3Server, bucket: str, key: str, scratch: Path) -> StockRestore:
    downloaded = scratch / "stock.sql.gz"
    pg.psql("CHECKPOINT")
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", DOWNLOAD_COMMAND, s3.endpoint, bucket, key, str(downloaded)],
        env={**os.environ, **s3.aws_environment()},
        check=True,
    )
    download_command = time.monotonic() - started
    downloaded.unlink()
    started = time.monotonic()
    s3.client().download_file(bucket, key, str(downloaded))
    download_in_process = time.monotonic() - started
    target = f"stock_{time.monotonic_ns()}"
    started = time.monotonic()
    subprocess.run([pg.tool("createdb"), target], env=pg.client_env(), check=True)
    with subprocess.Popen(["gzip", "-dc", str(downloaded)], stdout=subprocess.PIPE) as unzip:
        subprocess.run(
            [pg.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", os.devnull],
            stdin=unzip.stdout,
            env=pg.client_env(target),
            check=True,
            timeout=TIMEOUT_SECONDS,
        )
    load = time.monotonic() - started
    downloaded.unlink()
    pg.psql(f'DROP DATABASE "{target}"')
    return StockRestore(load, download_command, download_in_process)


PGBENCH_SCALE = int(os.environ.get("BENCH_PGBENCH_SCALE", "25"))
"""pgbench at scale 25: about 380 MiB loaded from a 7 MiB gzip dump (small download, big
load), beside the benchmark database (a download in proportion to the load)."""


def restores(
    pg: PgServer, s3: S3Server, bucket: str, base: dict[str, str], scratch: Path, repeats: int
) -> None:
    """Each shape's default gzip backup restored by Moonflower and by the stock tools, in
    turns; a custom-format backup restored with pg_restore --jobs 1 and 2."""
    pg.create_database("pgbench")
    subprocess.run(
        [pg.tool("pgbench"), "-i", "-s", str(PGBENCH_SCALE), "-q"],
        env=pg.client_env("pgbench"),
        check=True,
        capture_output=True,
    )
    pgbench_env = {**base, "PG_DATABASES": "pgbench"}
    measured("backup", env=pgbench_env)
    shapes = {
        "the benchmark database (a download in proportion to the load)": (
            "bench",
            newest(s3, bucket, ".sql.gz"),
        ),
        f"pgbench, scale {PGBENCH_SCALE} (small download, big load)": (
            "pgbench",
            newest(s3, bucket, ".sql.gz", "pgbench"),
        ),
    }
    print(
        "\n| restore (gzip, the default) | stock s | moonflower s | x stock | stock, download "
        "in-process s | x that |"
    )
    print("|---|---|---|---|---|---|")
    for label, (database, key) in shapes.items():
        stock, ours = [], []
        for _ in range(repeats):  # in turns: each restore leaves the server WAL to flush
            stock.append(stock_restore(pg, s3, bucket, key, scratch))
            ours.append(restore_sample(pg, base, database, key))
        whole = statistics.median(run.download_command + run.load for run in stock)
        in_process = statistics.median(run.download_in_process + run.load for run in stock)
        mine = statistics.median(ours)
        print(
            f"| {label} | {whole:.2f} | {mine:.2f} | {mine / whole:.2f} | {in_process:.2f} | "
            f"{mine / in_process:.2f} |"
        )
    custom_env = {**base, "BACKUP_FORMAT": "custom"}
    measured("backup", env=custom_env)
    custom_key = newest(s3, bucket, ".dump")
    print("\n| restore of the benchmark database, custom format | s |")
    print("|---|---|")
    for jobs in (1, 2):
        runs = [
            restore_sample(pg, custom_env, "bench", custom_key, "--jobs", str(jobs))
            for _ in range(repeats)
        ]
        print(f"| moonflower restore --jobs {jobs} | {statistics.median(runs):.2f} |")


def restore_sample(
    pg: PgServer, env: dict[str, str], database: str, key: str, *extra: str
) -> float:
    """The whole restore's wall seconds; the server starts from a checkpoint, as for the
    stock restore, and the copy is dropped. Not sampled while it runs: a sampling loop
    would take CPU from the restore."""
    target = f"ours_{time.monotonic_ns()}"
    pg.psql("CHECKPOINT")
    started = time.monotonic()
    sample = subprocess.run(
        moonflower_command("restore", database, "--into", target, "--backup", key, *extra),
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    wall = time.monotonic() - started
    if sample.returncode != 0:
        raise RuntimeError(f"moonflower restore failed: {sample.stderr[-2000:]}")
    pg.psql(f'DROP DATABASE "{target}"')
    return wall


def newest(s3: S3Server, bucket: str, ending: str, database: str = "bench") -> str:
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=f"bench/{database}_2")["Contents"]
    return max(item["Key"] for item in listing if item["Key"].endswith(ending))


def run_all(
    pg: PgServer, s3: S3Server, bucket: str, base: dict[str, str], scratch: Path, repeats: int
) -> None:
    floors()
    startup(pg, base, scratch)
    own_cpu(base, repeats)
    restores(pg, s3, bucket, base, scratch, repeats)
    many_databases(s3, scratch, repeats)
