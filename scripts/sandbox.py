"""`make sandbox`: a PostgreSQL and an S3 server to try Moonflower on, until Ctrl-C.

Starts the embedded PostgreSQL 18 with a sample database (`shop`) and SeaweedFS (a real S3
server: signatures, checksums, Object Lock) with a bucket, both on free loopback ports;
prints the settings to paste, and writes them to `sandbox.env` in the checkout as well
(`set -a; . ./sandbox.env; set +a`). Ctrl-C or SIGTERM stops both and removes the file and
the servers' data: no process and no port is left behind.
"""

import argparse
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.support.pgserver import PgServer  # noqa: E402
from tests.support.s3server import REGION  # noqa: E402
from tests.support.sample import SAMPLE_SQL  # noqa: E402
from tests.support.seaweed import SeaweedServer  # noqa: E402

BUCKET = "moonflower-sandbox"
PASSWORD = "sandbox-password"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def settings(pg: PgServer, s3: SeaweedServer, spool: Path) -> dict[str, str]:
    return {
        **pg.moonflower_env("shop"),
        **s3.moonflower_env(BUCKET, "sandbox"),
        "BACKUP_SPOOL_DIR": str(spool / "spool"),
        "BACKUP_STATE_DIR": str(spool / "state"),
    }


def env_lines(values: dict[str, str]) -> list[str]:
    return [f"{name}={shlex.quote(value)}" for name, value in values.items()]


def write_env_file(path: Path, lines: list[str]) -> None:
    """0600: it holds the sandbox's passwords."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# written by `make sandbox`; removed when it stops\n")
        handle.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env-file",
        type=Path,
        default=CHECKOUT / "sandbox.env",
        help="where to write the settings",
    )
    arguments = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stop = threading.Event()
    for number in STOP_SIGNALS:
        signal.signal(number, lambda *_: stop.set())
    seaweed = SeaweedServer()
    with tempfile.TemporaryDirectory(prefix="moonflower-sandbox-") as scratch:
        work = Path(scratch)
        for name in ("spool", "state"):
            (work / name).mkdir(mode=0o700)
        try:
            with PgServer(password=PASSWORD) as pg:
                pg.create_database("shop")
                pg.psql(SAMPLE_SQL, "shop")
                seaweed.start()
                seaweed.client().create_bucket(
                    Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
                )
                lines = env_lines(settings(pg, seaweed, work))
                write_env_file(arguments.env_file, lines)
                print("The sandbox is up: PostgreSQL 18 with the database `shop`, and SeaweedFS")
                print(f"with the bucket `{BUCKET}`. Paste these settings into another shell:\n")
                print("\n".join(f"export {line}" for line in lines))
                print(f"\nor: set -a; . {shlex.quote(str(arguments.env_file))}; set +a")
                print("then try: bin/moonflower check; bin/moonflower backup; bin/moonflower list")
                print("\nCtrl-C stops both servers and removes the file.", flush=True)
                stop.wait()
                print("stopping the sandbox...", flush=True)
        finally:
            arguments.env_file.unlink(missing_ok=True)
            seaweed.stop()
    print("the sandbox is stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
