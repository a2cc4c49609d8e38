"""Two writers, one key: another instance backing up the same database in the same millisecond
must never have its backup overwritten or removed by this run, and a write that landed but
whose answer was lost is not mistaken for a collision."""

from pathlib import Path

import pytest

from tests.support.faultproxy import (
    FORWARD_THEN_RESET,
    FaultProxy,
    Reply,
    Request,
    backup_write,
    s3_error,
)
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server

RIVAL_BODY = b"another writer's backup, stored under the same key"


def stream_env(env: dict[str, str], database: str, pausing_pg_dump: str) -> dict[str, str]:
    return {**env, "PG_DATABASES": database, "PG_DUMP_PATH": pausing_pg_dump}


@pytest.fixture(params=["single request", "streamed multipart"])
def upload_shape(
    request: pytest.FixtureRequest, backup_env: dict[str, str], proxy: FaultProxy
) -> dict[str, str]:
    env = {**backup_env, "S3_ENDPOINT": proxy.endpoint}
    if request.param == "streamed multipart":
        database = request.getfixturevalue("big_database")
        env = stream_env(env, database, request.getfixturevalue("pausing_pg_dump"))
    return env


def assert_rival_untouched(s3: S3Server, bucket: str, key: str) -> None:
    stored = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == RIVAL_BODY


def test_a_key_another_writer_took_first_is_never_overwritten(
    s3: S3Server, bucket: str, proxy: FaultProxy, upload_shape: dict[str, str], spool_dir: Path
) -> None:
    taken: list[str] = []

    def rival_first(request: Request) -> Reply | None:
        key = backup_write(request, bucket)
        if key is not None and not taken:
            s3.client().put_object(Bucket=bucket, Key=key, Body=RIVAL_BODY)
            taken.append(key)
        return None

    proxy.rules.append(rival_first)

    result = run_moonflower(env=upload_shape)

    assert taken, "the run never wrote a backup"
    assert result.returncode == 1, result.stderr
    assert "not written by this run" in result.stderr
    assert_rival_untouched(s3, bucket, taken[0])
    assert s3.no_uploads_left(bucket)
    assert list(spool_dir.iterdir()) == []


def test_where_the_store_ignores_the_condition_the_other_writers_object_is_not_removed(
    s3: S3Server, bucket: str, proxy: FaultProxy, upload_shape: dict[str, str]
) -> None:
    """The rival's object lands after this run's write and before its check: the check finds
    a mismatch, and must not delete what this run did not write."""
    proxy.drop_headers.add("if-none-match")
    written: list[str] = []
    taken: list[str] = []

    def rival_after(request: Request) -> Reply | None:
        key = backup_write(request, bucket)
        if key is not None:
            written.append(key)
        elif request.method == "HEAD" and written and not taken:
            s3.client().put_object(Bucket=bucket, Key=written[0], Body=RIVAL_BODY)
            taken.append(written[0])
        return None

    proxy.rules.append(rival_after)

    result = run_moonflower(env=upload_shape)

    assert taken, "the run never checked its upload"
    assert result.returncode == 1, result.stderr
    assert "left alone" in result.stderr
    assert_rival_untouched(s3, bucket, taken[0])


def test_a_write_whose_answer_was_lost_is_not_a_collision(
    s3: S3Server, bucket: str, proxy: FaultProxy, upload_shape: dict[str, str]
) -> None:
    """The write lands but the connection drops before the answer: the retry is refused as
    taken, and the run sees that what S3 holds is its own backup."""
    lost: list[str] = []

    def lose_first_answer(request: Request) -> Reply | None:
        key = backup_write(request, bucket)
        if key is not None and not lost:
            lost.append(key)
            return FORWARD_THEN_RESET
        return None

    proxy.rules.append(lose_first_answer)

    result = run_moonflower(env={**upload_shape, "S3_MAX_ATTEMPTS": "4"})

    assert lost, "the run never wrote a backup"
    assert result.returncode == 0, result.stderr
    assert s3.keys(bucket) == lost
    verify = run_moonflower("verify", env=upload_shape)
    assert verify.returncode == 0, verify.stderr


def test_a_store_that_does_not_implement_the_condition_still_gets_backups(
    s3: S3Server, bucket: str, proxy: FaultProxy, upload_shape: dict[str, str]
) -> None:
    """A store answering 501 to If-None-Match: once warned, the writes go without it."""
    refused: list[str] = []

    def no_conditions(request: Request) -> Reply | None:
        if "if-none-match" in {name.lower() for name in request.headers}:
            refused.append(request.path)
            return s3_error(501, "NotImplemented", "If-None-Match is not implemented")
        return None

    proxy.rules.append(no_conditions)

    result = run_moonflower(env=upload_shape)

    assert refused, "the run never sent a conditional write"
    assert result.returncode == 0, result.stderr
    assert "does not implement conditional writes" in result.stderr
    assert len(s3.keys(bucket)) == 1
    verify = run_moonflower("verify", env=upload_shape)
    assert verify.returncode == 0, verify.stderr
    checked = run_moonflower("check", env=upload_shape)  # its probe is written the same way
    assert checked.returncode == 0, checked.stdout + checked.stderr
