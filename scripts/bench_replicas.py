"""Several destinations (issue 31), run by `make bench` after scripts/bench_pitr.py:

- a logical backup of the benchmark database (BENCH_ROWS rows, gzip) to the primary (moto)
  alone, then with one replica on another S3 server (SeaweedFS), BENCH_REPEATS times each,
  interleaved; target: at most 1.3x the time to one destination;
- the RPO of `kill -9` (the server; then the host: server and Moonflower) with that replica
  configured, light load, WAL_PUSH_INTERVAL=5 s, BENCH_PITR_KILLS kills each; target: a
  median of at most 5 s (BENCH_REPLICAS_SKIP_RPO=1 skips it).

Prints Markdown tables for BENCHMARKS.md; exits 1 when a target is missed.
"""

import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))
sys.path.insert(0, str(CHECKOUT / "scripts"))

from bench import FILL, REPEATS, ROWS, run_moonflower  # noqa: E402
from bench_pitr import KILLS, PUSH_SECONDS, one_kill  # noqa: E402

from tests.support.pgserver import PgServer  # noqa: E402
from tests.support.replicas import replica_env  # noqa: E402
from tests.support.s3server import S3Server  # noqa: E402
from tests.support.seaweed import SeaweedServer  # noqa: E402

BACKUP_RATIO_TARGET = 1.3
RPO_TARGET_SECONDS = 5.0


def backups(pg: PgServer, s3: S3Server, seaweed: SeaweedServer, scratch: Path) -> bool:
    base = {
        **pg.moonflower_env("bench"),
        **s3.moonflower_env(s3.new_bucket(), "bench"),
        "BACKUP_STATE_DIR": str(scratch),
    }
    alone: list[float] = []
    both: list[float] = []
    for _ in range(REPEATS):
        alone.append(run_moonflower(base)[0])
        both.append(run_moonflower({**base, **replica_env(seaweed, seaweed.new_bucket())})[0])
    ratio = statistics.median(both) / statistics.median(alone)
    met = ratio <= BACKUP_RATIO_TARGET
    print(f"\n| logical backup of the benchmark database ({REPEATS} runs each) | median s |")
    print("|---|---|")
    print(f"| to the primary (moto) alone | {statistics.median(alone):.2f} |")
    print(f"| and to a replica on SeaweedFS | {statistics.median(both):.2f} |")
    print(
        f"| ratio (target at most {BACKUP_RATIO_TARGET}x) | {ratio:.2f}x "
        f"({'met' if met else 'NOT met'}) |"
    )
    return met


def rpo(s3: S3Server, seaweed: SeaweedServer) -> bool:
    print(
        f"\n| RPO with a replica, kill -9 (WAL_PUSH_INTERVAL={PUSH_SECONDS} s, {KILLS} kills, "
        "light load) | median s | worst s |"
    )
    print("|---|---|---|")
    met = True
    for host in (False, True):
        ages = [
            one_kill(s3, False, host, replica_env(seaweed, seaweed.new_bucket()))[0]
            for _ in range(KILLS)
        ]
        median = statistics.median(ages)
        met = met and median <= RPO_TARGET_SECONDS
        lost = "the host (server and Moonflower)" if host else "the server"
        print(f"| {lost} | {median:.2f} | {max(ages):.2f} |")
    print(f"\ntarget: median at most {RPO_TARGET_SECONDS:.0f} s ({'met' if met else 'NOT met'})")
    return met


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    seaweed = SeaweedServer().start()
    try:
        with S3Server() as s3, tempfile.TemporaryDirectory() as scratch:
            with PgServer() as pg:
                print(f"building the benchmark database ({ROWS:,} rows)...", flush=True)
                pg.create_database("bench")
                pg.psql(FILL.format(rows=ROWS), "bench")
                pg.psql("VACUUM ANALYZE bench", "bench")
                backup_met = backups(pg, s3, seaweed, Path(scratch))
            rpo_met = True if os.environ.get("BENCH_REPLICAS_SKIP_RPO") else rpo(s3, seaweed)
    finally:
        seaweed.stop()
    return 0 if backup_met and rpo_met else 1


if __name__ == "__main__":
    sys.exit(main())
