import pendulum
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from moonflower.catalog.keys import backup_key
from moonflower.postgres.clients import VERSION_PATTERN
from moonflower.postgres.connection import escape_passfile_field
from moonflower.storage.errors import is_transient
from moonflower.storage.objects import MIB, S3_MAX_PARTS, part_size_for


def test_key_format_matches_the_old_tool() -> None:
    moment = pendulum.datetime(2026, 11, 26, 1, 0, 0, 123000, tz="UTC")

    assert backup_key("nightly", "test", moment, ".sql.gz") == (
        "nightly/test_2026-11-26T01:00:00.123Z.sql.gz"
    )
    assert backup_key("", "test", moment, ".sql.gz") == "test_2026-11-26T01:00:00.123Z.sql.gz"


def test_key_time_is_utc_whatever_the_input_zone() -> None:
    moment = pendulum.datetime(2026, 7, 1, 3, 0, 0, tz="Europe/Berlin")

    assert backup_key("", "db", moment, ".sql.gz") == "db_2026-07-01T01:00:00.000Z.sql.gz"


@pytest.mark.parametrize("size", [0, 1, 100 * MIB, 200 * 1024 * MIB, 5 * 1024 * 1024 * MIB])
def test_part_size_keeps_under_the_part_limit(size: int) -> None:
    part = part_size_for(size)

    assert part >= 5 * MIB
    assert size / part < S3_MAX_PARTS


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchBucket", 404), False),
        (client_error("InvalidAccessKeyId", 403), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ValueError("not ours"), False),
    ],
)
def test_which_errors_are_retried(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_passfile_fields_are_escaped() -> None:
    assert escape_passfile_field("a:b\\c") == "a\\:b\\\\c"


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ("pg_dump (PostgreSQL) 18.6", "18"),
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "15"),
    ],
)
def test_client_versions_are_read(output: str, major: str) -> None:
    match = VERSION_PATTERN.search(output)

    assert match is not None
    assert match.group(1) == major


@pytest.mark.parametrize(
    ("first_byte", "tag"),
    [(0x8C, 3), (0x84, 1), (0x85, 1), (0xC3, 3), (0xC1, 1), (0x1F, None), (0xD2, 18)],
)
def test_openpgp_packet_tags(first_byte: int, tag: int | None) -> None:
    from moonflower.proc.openpgp import packet_tag

    assert packet_tag(first_byte) == tag


@pytest.mark.parametrize(
    ("key", "database", "extension"),
    [
        ("nightly/app_2026-11-26T01:00:00.123Z.sql.gz", "app", ".sql.gz"),
        ("nightly/my_db_2026-11-26T01:00:00.123Z.sql.gz.gpg", "my_db", ".sql.gz.gpg"),
        ("nightly/données☃_2026-11-26T01:00:00.123Z.sql.gpg", "données☃", ".sql.gpg"),
    ],
)
def test_our_keys_and_the_old_tools_keys_are_recognised(
    key: str, database: str, extension: str
) -> None:
    from moonflower.catalog.keys import parse_key

    parsed = parse_key(key, "nightly")

    assert parsed is not None
    assert parsed.database == database
    assert parsed.extension == extension
    assert parsed.created.isoformat() == "2026-11-26T01:00:00.123000+00:00"


@pytest.mark.parametrize(
    "key",
    [
        "nightly/sub/app_2026-11-26T01:00:00.123Z.sql.gz",
        "other/app_2026-11-26T01:00:00.123Z.sql.gz",
        "nightly/app_2026-11-26T01:00:00Z.sql.gz",
        "nightly/app_2026-11-26T01:00:00.123Z.sql.gz.bak",
        "nightly/notes.txt",
        "nightly/_2026-11-26T01:00:00.123Z.sql.gz",
        "nightlyx/app_2026-11-26T01:00:00.123Z.sql.gz",
    ],
)
def test_other_keys_are_not_ours(key: str) -> None:
    from moonflower.catalog.keys import parse_key

    assert parse_key(key, "nightly") is None


@pytest.mark.parametrize(
    "time", ["2026-02-30T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-01-01T25:00:00.000Z"]
)
def test_a_key_with_an_impossible_time_is_not_a_backup(time: str) -> None:
    from moonflower.catalog.keys import parse_key

    assert parse_key(f"nightly/app_{time}.sql.gz", "nightly") is None


def test_health_reports_a_run_that_has_gone_on_too_long() -> None:
    import subprocess
    import sys

    import pendulum

    from moonflower.reporting.health import health
    from tests.support.procs import read_proc
    from tests.support.waiting import eventually

    # A live process whose command line names Moonflower, as a running backup's does.
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "moonflower"])
    try:
        assert eventually(lambda: b"moonflower" in read_proc(running.pid, "cmdline"), 30)
        started = pendulum.now("UTC").subtract(hours=30).isoformat()
        state = {"current_run": {"started": started, "pid": running.pid}}

        overdue = health(state, too_long=24 * 3600)
        in_time = health(state, too_long=48 * 3600)
        finished = health({**state, "current_run": None, "last_run": {"status": 0}}, 24 * 3600)
    finally:
        running.kill()
        running.wait(timeout=10)

    assert not overdue.ok
    assert "still going" in overdue.reason
    assert in_time.ok
    assert finished.ok


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("moonflower-run0123456789ab-abcd.sql.gz.part", "run0123456789ab"),
        ("moonflower-1234-abcd.sql.gz.part", "1234"),
        ("moonflower-run0123456789ab.lock", None),
        ("moonflower-runner-abcd", None),
        ("moonflower-0", None),
        ("moonflower-1001", None),
        ("moonflower-user-1001", None),
        ("moonflower-state-0.json", None),
        ("moonflower-1234-", None),
        ("moonflower-uploads.journal", None),
    ],
)
def test_only_names_made_by_a_run_carry_its_owner(name: str, owner: str | None) -> None:
    """A private state directory (or anything else named moonflower-<something>) is never
    taken for a killed run's leftovers."""
    from moonflower.proc.spool import owner_of

    assert owner_of(name) == owner
