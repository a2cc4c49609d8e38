"""The database a restore creates is made while the backup downloads, under a name of its
own, and becomes the target only once the backup proved complete (issue 29, item 5): a
refused backup leaves no database behind, a good one leaves only the target."""

import gzip
import hashlib
from urllib.parse import unquote

from tests.conftest import NASTY_DATABASE
from tests.support.faultproxy import FaultProxy, Request
from tests.support.names import unique_name
from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually

SCRATCH = "moonflower_restore_"


def databases(pg: PgServer) -> set[str]:
    return set(pg.psql("SELECT datname FROM pg_database").split())


def test_a_good_backup_leaves_the_target_and_nothing_else(
    pg: PgServer, backup_env: dict[str, str]
) -> None:
    assert run_moonflower(env=backup_env).returncode == 0
    before = databases(pg)
    target = unique_name("mf_scratch_good")
    restored = run_moonflower("restore", NASTY_DATABASE, "--into", target, env=backup_env)
    assert restored.returncode == 0, restored.stderr
    assert databases(pg) - before == {target}
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_a_refused_backup_leaves_no_database_behind(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    name = unique_name("mf_scratch_cut")
    body = gzip.compress(b"--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE t (x int);\n")
    s3.client().put_object(
        Bucket=bucket,
        Key=f"nightly/{name}_2024-01-01T00:00:00.000Z.sql.gz",
        Body=body,
        Metadata={"sha256": hashlib.sha256(body).hexdigest()},
    )
    before = databases(pg)
    restored = run_moonflower("restore", name, "--into", name, env=backup_env)
    assert restored.returncode == 1
    assert "truncated" in restored.stderr
    assert databases(pg) == before
    assert not [database for database in databases(pg) if database.startswith(SCRATCH)]


def test_a_target_that_appears_during_the_download_is_not_replaced(
    pg: PgServer, s3: S3Server, backup_env: dict[str, str]
) -> None:
    """The scratch database is renamed, never forced: a target someone else made while the
    backup downloaded stays theirs, and the scratch database goes."""
    assert run_moonflower(env=backup_env).returncode == 0
    target = unique_name("mf_scratch_race")
    made: list[str] = []

    def make_the_target_meanwhile(request: Request) -> None:
        backup = request.method == "GET" and f"/{NASTY_DATABASE}_" in unquote(request.path)
        if backup and not made:
            # After the restore found no target and made its scratch database: the race.
            assert eventually(lambda: any(d.startswith(SCRATCH) for d in databases(pg)), 30)
            pg.create_database(target)
            pg.psql("CREATE TABLE theirs (x int); INSERT INTO theirs VALUES (1);", target)
            made.append(target)

    with FaultProxy(s3.endpoint, [make_the_target_meanwhile]) as proxy:
        restored = run_moonflower(
            "restore",
            NASTY_DATABASE,
            "--into",
            target,
            env={**backup_env, "S3_ENDPOINT": proxy.endpoint},
        )
    assert made, "the backup was never downloaded through the proxy"
    assert restored.returncode == 1
    assert "already exists" in restored.stderr, restored.stderr
    assert pg.psql("SELECT x FROM theirs", target) == "1"
    assert not [database for database in databases(pg) if database.startswith(SCRATCH)]
