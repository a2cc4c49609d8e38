"""Restoring the way an operator would at 3 a.m.: stock gzip and psql, nothing of ours."""

import subprocess
from pathlib import Path

from tests.support.pgserver import COMMAND_TIMEOUT_SECONDS, PgServer


def load_gzip_dump(pg: PgServer, dump: Path, database: str) -> None:
    """`gzip -dc dump | psql -v ON_ERROR_STOP=1 database`."""
    pg.create_database(database)
    with dump.open("rb") as source:
        gunzip = subprocess.Popen(["gzip", "-dc"], stdin=source, stdout=subprocess.PIPE)
        assert gunzip.stdout is not None
        psql = subprocess.run(
            [pg.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=gunzip.stdout,
            env=pg.client_env(database),
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        gunzip.stdout.close()
        gunzip_status = gunzip.wait(timeout=COMMAND_TIMEOUT_SECONDS)
    assert gunzip_status == 0, "gzip -dc failed"
    assert psql.returncode == 0, psql.stderr.decode(errors="replace")
