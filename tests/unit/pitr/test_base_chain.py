"""Chains of incremental base backups: resolving them for a restore, keeping them in prune,
and reading descriptions written before incremental backups existed."""

import json
import re
from dataclasses import asdict, replace

import pendulum
import pytest

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.core.errors import RestoreError
from moonflower.pitr.base_chain import chain_of
from moonflower.retention.prune import BASE, Decision, keep_chains

FULL = BaseBackupRecord(
    label="2026-11-01T02:00:00.000Z",
    key="pitr/base/2026-11-01T02:00:00.000Z/base.tar.zst",
    start_lsn="0/2000028",
    stop_lsn="0/2000100",
    timeline=1,
    start_time="2026-11-01T02:00:00+00:00",
    stop_time="2026-11-01T02:01:00+00:00",
    server_version="18.0",
    server_major=18,
    segment_size=16 * 1024 * 1024,
    size=100,
    sha256="0" * 64,
    compression="zstd",
    encrypted=False,
)


def incremental(day: int, parent: BaseBackupRecord) -> BaseBackupRecord:
    label = f"2026-11-0{day}T02:00:00.000Z"
    return replace(
        FULL,
        label=label,
        key=f"pitr/base/{label}/base.tar.zst",
        parent=parent.label,
        chain_length=parent.chain_length + 1,
    )


SECOND = incremental(2, FULL)
THIRD = incremental(3, SECOND)
ALL = [FULL, SECOND, THIRD]


def test_a_chain_runs_from_the_full_backup_to_the_one_asked_for() -> None:
    assert chain_of(THIRD, ALL) == [FULL, SECOND, THIRD]
    assert chain_of(FULL, ALL) == [FULL]


def test_a_chain_with_a_missing_link_is_refused() -> None:
    with pytest.raises(RestoreError, match=re.escape(f"builds on {SECOND.label}")):
        chain_of(THIRD, [FULL, THIRD])


def test_descriptions_from_before_incremental_backups_still_read() -> None:
    old = {key: value for key, value in asdict(FULL).items()}
    for added in ("parent", "chain_length", "manifest_key"):
        del old[added]

    record = BaseBackupRecord.from_json(json.dumps(old).encode())

    assert record == FULL
    assert not record.incremental


def decision(record: BaseBackupRecord, *reasons: str) -> Decision:
    created = pendulum.parse(record.stop_time)
    assert isinstance(created, pendulum.DateTime)
    return Decision("base backups", BASE, record.label, created, record.size, reasons)


def test_prune_keeps_what_a_kept_backup_builds_on() -> None:
    bases = {record.label: record for record in ALL}
    decided = [decision(THIRD, "last"), decision(SECOND), decision(FULL)]

    kept = keep_chains(decided, bases)

    assert [d.reasons for d in kept] == [
        ("last",),
        (f"needed by {THIRD.label}",),
        (f"needed by {SECOND.label}",),
    ]


def test_prune_lets_a_whole_old_chain_go() -> None:
    newer_full = replace(FULL, label="2026-11-09T02:00:00.000Z")
    bases = {record.label: record for record in [*ALL, newer_full]}
    decided = [decision(newer_full, "last"), decision(THIRD), decision(SECOND), decision(FULL)]

    kept = keep_chains(decided, bases)

    assert [d.keep for d in kept] == [True, False, False, False]
