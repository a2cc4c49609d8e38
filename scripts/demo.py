"""`make demo`: a real backup with bin/moonflower, restored with stock tools, compared.

Starts an embedded PostgreSQL 18 and a local S3 server (moto) on free loopback ports,
backs up a small shop database, restores it with `gzip -dc | psql`, and shows that the
data matches. Everything it starts is stopped and removed at the end.
"""

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.support.pgserver import PgServer  # noqa: E402
from tests.support.runner import clean_environment, moonflower_command  # noqa: E402
from tests.support.s3server import S3Server  # noqa: E402
from tests.support.sample import SAMPLE_SQL  # noqa: E402
from tests.support.stock import load_gzip_dump  # noqa: E402

TABLES = ("customers", "orders")
console = Console()


def row_counts(pg: PgServer, database: str) -> list[str]:
    return [pg.psql(f"SELECT count(*) FROM {table}", database) for table in TABLES]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    console.rule("Moonflower demo")
    with PgServer() as pg, S3Server() as s3, tempfile.TemporaryDirectory() as scratch:
        console.print(f"PostgreSQL 18 on 127.0.0.1:{pg.port}, S3 (moto) at {s3.endpoint}")
        pg.create_database("shop")
        pg.psql(SAMPLE_SQL, "shop")
        bucket = s3.new_bucket()

        env = dict(pg.moonflower_env("shop"))
        env.update(s3.moonflower_env(bucket, "nightly"))
        shown = " ".join(
            f"{k}=..." if "PASSWORD" in k or "SECRET" in k else f"{k}={v}" for k, v in env.items()
        )
        console.print(f"\n[bold]$ {shown} bin/moonflower[/]\n")
        status = subprocess.run(
            moonflower_command(), env=clean_environment(env), timeout=300, check=False
        ).returncode
        if status != 0:
            console.print(f"[red]bin/moonflower exited with {status}[/]")
            return status

        [key] = s3.keys(bucket)
        downloaded = Path(scratch) / Path(key).name
        s3.client().download_file(bucket, key, str(downloaded))
        console.print(f"\n[bold]$ gzip -dc {downloaded.name} | psql shop_restored[/]")
        load_gzip_dump(pg, downloaded, "shop_restored")

        table = Table(title="Rows: original vs restored")
        for column in ("table", "shop", "shop_restored"):
            table.add_column(column)
        for name, original, restored in zip(
            TABLES, row_counts(pg, "shop"), row_counts(pg, "shop_restored"), strict=True
        ):
            table.add_row(name, original, restored)
        console.print(table)
        same = pg.dump_text("shop") == pg.dump_text("shop_restored")
        if not same:
            console.print("[red]The restored database differs from the original.[/]")
            return 1
        console.print("[green]pg_dump of the original and of the restore are identical.[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
