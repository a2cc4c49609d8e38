"""The WAL archive's lease as read from the bucket: untrusted text, aged on S3's clock, and
a holder on this host that is known dead without waiting."""

import datetime
import os
import socket
import subprocess
import sys

from moonflower.pitr.archive_writer import (
    STREAM,
    WAL_PUSH,
    gone_from_this_host,
    process_start,
    this_process,
)
from moonflower.pitr.writer_lease import Holder, parse_holder
from moonflower.storage.conditional import age_on_s3_clock

LIVE = this_process(STREAM, "stream:test")


def answered_at(date: str, modified: datetime.datetime) -> dict[str, object]:
    return {"LastModified": modified, "ResponseMetadata": {"HTTPHeaders": {"date": date}}}


def test_the_age_is_measured_on_s3s_clock_not_this_hosts() -> None:
    modified = datetime.datetime(2020, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    response = answered_at("Wed, 01 Jan 2020 12:00:40 GMT", modified)
    assert age_on_s3_clock(response) == 40.0


def test_a_lease_from_the_future_is_not_older_than_zero() -> None:
    modified = datetime.datetime(2020, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert age_on_s3_clock(answered_at("Wed, 01 Jan 2020 11:59:00 GMT", modified)) == 0.0


def test_what_does_not_read_as_a_lease_has_no_holder() -> None:
    for data in (b"", b"\xff\xfe", b"[]", b'{"writer": "x"}', b'{"writer":1,"kind":2}'):
        assert parse_holder(data) is None
    written = b'{"writer":"w","kind":"stream","host":"h","pid":"7","since":"s"}'
    assert parse_holder(written) == Holder("w", "stream", "h", 7, "", "s")


def test_a_holder_on_another_host_is_never_known_dead() -> None:
    elsewhere = Holder("w", STREAM, socket.gethostname() + ".other", 999999, "1", "s")
    assert not gone_from_this_host(elsewhere)


def test_a_live_stream_on_this_host_is_not_dead() -> None:
    assert not gone_from_this_host(LIVE)


def test_an_earlier_life_with_this_pid_is_dead() -> None:
    earlier = Holder("w", STREAM, LIVE.host, os.getpid(), "1", "s")
    assert gone_from_this_host(earlier)


def test_a_finished_process_on_this_host_is_dead() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    finished = Holder("w", STREAM, LIVE.host, int(child.stdout), "1", "s")
    assert gone_from_this_host(finished)


def test_a_wal_push_holder_waits_out_its_lease() -> None:
    pusher = Holder("w", WAL_PUSH, LIVE.host, 999999, "1", "s")
    assert not gone_from_this_host(pusher)


def test_the_start_time_of_this_process_is_known() -> None:
    assert process_start(os.getpid()).isdigit()
