"""A logical backup reaches pg_dump before boto3 is imported (issue 30): importing boto3 and
building its client cost about 0.3 s of CPU, which the dump should not wait for. The import
is watched from inside the process (a finder on sys.meta_path, installed before Moonflower
loads) and pg_dump's start from a wrapper that stamps the moment it runs."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import NASTY_DATABASE
from tests.support.pgserver import PgServer
from tests.support.runner import clean_environment

CHECKOUT = Path(__file__).resolve().parents[2]
WATCHED_RUN = """
import importlib.abc, sys, time

STAMP = sys.argv[1]

class FirstImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "boto3":
            with open(STAMP, "w") as stamp:
                stamp.write(repr(time.time()))
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, FirstImport())
sys.argv = ["moonflower", "backup"]
from moonflower.cli.entry import run
run()
"""


def stamping_pg_dump(pg: PgServer, directory: Path) -> tuple[Path, Path]:
    stamp = directory / "pg_dump-started"
    wrapper = directory / "stamping" / "pg_dump"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/bash\n"
        f'if [ "$1" != "--version" ]; then echo "$EPOCHREALTIME" > "{stamp}"; fi\n'
        f'exec "{pg.tool("pg_dump")}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, stamp


def test_the_dump_starts_before_boto3_is_imported(
    pg: PgServer, backup_env: dict[str, str], tmp_path: Path
) -> None:
    wrapper, dump_started = stamping_pg_dump(pg, tmp_path)
    boto3_imported = tmp_path / "boto3-imported"
    env = clean_environment(
        {**backup_env, "PG_DATABASES": NASTY_DATABASE, "PG_DUMP_PATH": str(wrapper)}
    )
    env["PYTHONPATH"] = str(CHECKOUT)
    result = subprocess.run(
        [sys.executable, "-c", WATCHED_RUN, str(boto3_imported)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert boto3_imported.exists(), "boto3 was never imported: the watch did not work"
    margin = float(boto3_imported.read_text()) - float(dump_started.read_text())
    print(f"boto3 imported {margin:.3f} s after pg_dump started")
    assert margin > 0
