"""`make screenshot`: docs/status-page.png, the status page as headless Chromium draws it.

Starts an embedded PostgreSQL and a local S3 (moto), backs up two sample databases a few
times (one run with a database that does not exist, so a failure shows), takes a base
backup, serves the page with `moonflower run` and photographs it.
"""

import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.support.pgserver import PgServer, free_port  # noqa: E402
from tests.support.runner import clean_environment, moonflower_command, run_moonflower  # noqa: E402
from tests.support.s3server import S3Server  # noqa: E402
from tests.support.sample import SAMPLE_SQL  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402

TARGET = CHECKOUT / "docs" / "status-page.png"


def answers(url: str) -> bool:
    """Any HTTP answer (health is 503 here: one run failed on purpose)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    with PgServer() as pg, S3Server() as s3, tempfile.TemporaryDirectory() as scratch:
        for name in ("shop", "billing"):
            pg.create_database(name)
            pg.psql(SAMPLE_SQL, name)
        env = {
            **pg.moonflower_env("shop billing"),
            **s3.moonflower_env(s3.new_bucket(), "nightly"),
            "BACKUP_STATE_DIR": scratch,
        }
        for run in range(4):
            if run == 2:
                more = "SELECT 1, n FROM generate_series(1, 20000) AS n"
                pg.psql(f"INSERT INTO orders (customer_id, total) {more}", "shop")
            run_moonflower(env=env)
        run_moonflower(env={**env, "PG_DATABASES": "shop billing archive"})
        run_moonflower("basebackup", env=env)
        port = free_port()
        served = {
            **env,
            "SCHEDULE": "0 1 * * *",
            "BASEBACKUP_SCHEDULE": "0 2 * * 0",
            "METRICS_ADDRESS": f"127.0.0.1:{port}",
        }
        log = (Path(scratch) / "run.log").open("w")
        process = subprocess.Popen(
            moonflower_command("run"),
            env=clean_environment(served),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if not eventually(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60):
                print((Path(scratch) / "run.log").read_text(), file=sys.stderr)
                print("the status server did not start", file=sys.stderr)
                return 1
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--user-data-dir={Path(scratch) / 'chromium'}",
                    "--window-size=1000,1700",
                    f"--screenshot={TARGET}",
                    f"http://127.0.0.1:{port}/",
                ],
                capture_output=True,
                check=True,
                timeout=120,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
