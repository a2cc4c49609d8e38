"""A plain backup is read to the end while it downloads: what that must not change."""

import gzip
import hashlib
from urllib.parse import unquote

from tests.conftest import NASTY_DATABASE
from tests.support.faultproxy import FORWARD_HALF, FaultProxy, Request
from tests.support.names import unique_name
from tests.support.pgserver import PgServer
from tests.support.runner import backed_up, run_moonflower
from tests.support.s3server import S3Server


def test_a_download_that_breaks_mid_object_is_downloaded_again(
    pg: PgServer, s3: S3Server, backup_env: dict[str, str]
) -> None:
    backed_up(backup_env)
    cut: list[str] = []

    def break_the_first_whole_get(request: Request) -> object:
        whole_object = request.method == "GET" and "range" not in {
            name.lower() for name in request.headers
        }
        if whole_object and f"/{NASTY_DATABASE}_" in unquote(request.path) and not cut:
            cut.append(request.path)
            return FORWARD_HALF
        return None

    target = unique_name("mf_streamed_cut")
    with FaultProxy(s3.endpoint, [break_the_first_whole_get]) as proxy:
        restored = run_moonflower(
            "restore",
            NASTY_DATABASE,
            "--into",
            target,
            env={**backup_env, "S3_ENDPOINT": proxy.endpoint},
        )

    assert cut, "the backup was never streamed through the proxy"
    assert restored.returncode == 0, restored.stderr
    assert "downloading it whole instead" in restored.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_a_cut_dump_with_a_matching_checksum_never_drops_the_target(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """Well-formed gzip, right SHA-256, but the SQL stops early (pg_dump died): the checks
    done while it downloads must refuse it before --drop-existing drops anything."""
    precious = unique_name("mf_precious")
    pg.create_database(precious)
    pg.psql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7);", precious)
    sql = (
        b"--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE t (x int);\nCOPY t (x) FROM stdin;\n"
    )
    body = gzip.compress(sql + b"1\n2\n" * 50_000)
    s3.client().put_object(
        Bucket=bucket,
        Key=f"nightly/{precious}_2024-01-01T00:00:00.000Z.sql.gz",
        Body=body,
        Metadata={"sha256": hashlib.sha256(body).hexdigest()},
    )

    restored = run_moonflower(
        "restore", precious, "--into", precious, "--drop-existing", env=backup_env
    )

    assert restored.returncode == 1
    assert "truncated" in restored.stderr
    assert pg.psql("SELECT x FROM kept", precious) == "7"


def test_a_backup_damaged_after_upload_is_refused_whatever_its_decoders_say(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    """The last bytes changed: the decoders fail on the gzip trailer, but the checksum is
    what the error names, and nothing is created."""
    backed_up(backup_env, PG_DATABASES="second")
    [key] = [key for key in s3.keys(bucket) if "/second_" in key]
    client = s3.client()
    original = client.get_object(Bucket=bucket, Key=key)
    body = original["Body"].read()
    body = body[:-3] + bytes([body[-3] ^ 0xFF]) + body[-2:]
    client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=original["Metadata"])
    target = unique_name("mf_damaged_end")

    restored = run_moonflower("restore", "second", "--into", target, env=backup_env)

    assert restored.returncode == 1
    assert "does not match the SHA-256" in restored.stderr
    assert pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'") == "0"


def test_a_multipart_backup_is_read_in_one_pass_against_its_composite_checksum(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str], big_database: str
) -> None:
    env = {**backup_env, "PG_DATABASES": big_database, "BACKUP_COMPRESSION": "none"}
    for _ in range(3):  # on a busy machine pg_dump may end before the upload beside it starts
        backed_up(env)
        [key] = [key for key in s3.keys(bucket) if f"/{big_database}_" in key]
        if s3.client().head_object(Bucket=bucket, Key=key)["Metadata"].get("part-size"):
            break
        s3.client().delete_object(Bucket=bucket, Key=key)
    assert s3.client().head_object(Bucket=bucket, Key=key)["Metadata"].get("part-size")
    copy = unique_name("mf_streamed_multipart")

    with FaultProxy(s3.endpoint) as proxy:
        restored = run_moonflower(
            "restore", big_database, "--into", copy, env={**env, "S3_ENDPOINT": proxy.endpoint}
        )

    assert restored.returncode == 0, restored.stderr
    assert "checksum ok (composite SHA-256" in restored.stderr
    gets = [seen for seen in proxy.seen if seen.method == "GET" and key in unquote(seen.path)]
    assert len(gets) == 1, "the backup was not read in one streamed GET"
    assert pg.dump_text(copy) == pg.dump_text(big_database)
