"""Expiry of physical backups: base backups older than S3_EXPIRES_IN are deleted (never the
newest), then the WAL that no kept base backup needs: every segment before the start of the
oldest one kept. History files are tiny and kept."""

from dataclasses import dataclass, field

import pendulum

from moonflower.actions.basebackup import BaseBackupRecord
from moonflower.config.model import S3Config
from moonflower.output.logs import log
from moonflower.postgres.wal_names import parse_lsn, segment_for, segment_of
from moonflower.s3.gateway import Storage
from moonflower.s3.physical_catalog import base_backups, wal_archive
from moonflower.s3.physical_keys import base_prefix


@dataclass
class PhysicalPlan:
    expired: list[BaseBackupRecord] = field(default_factory=list)
    kept: list[BaseBackupRecord] = field(default_factory=list)
    wal_keys: list[str] = field(default_factory=list)
    """WAL objects older than the oldest kept base backup's start."""


def plan(storage: Storage, config: S3Config, now: pendulum.DateTime) -> PhysicalPlan:
    assert config.expires_in is not None
    bases = base_backups(storage, config.prefix)
    result = PhysicalPlan()
    for position, base in enumerate(reversed(bases)):
        expired = config.expires_in.after(base.stopped) <= now
        (result.expired if expired and position > 0 else result.kept).append(base)
    if not result.kept:
        return result  # no base backup at all: WAL alone is not pruned (nothing says from where)
    oldest = min(result.kept, key=lambda base: parse_lsn(base.start_lsn))
    first_needed = segment_for(oldest.timeline, parse_lsn(oldest.start_lsn), oldest.segment_size)
    for stored in wal_archive(storage, config.prefix):
        segment = segment_of(stored.item.name, oldest.segment_size)
        if segment is not None and segment.number < first_needed.number:
            result.wal_keys.append(stored.item.key)
    return result


def base_keys(storage: Storage, prefix: str, base: BaseBackupRecord) -> list[str]:
    folder = f"{base_prefix(prefix)}{base.label}/"
    return [item.key for item in storage.list_objects(folder)]


@dataclass
class PhysicalPruned:
    deleted: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def prune_physical(storage: Storage, config: S3Config, dry_run: bool = False) -> PhysicalPruned:
    outcome = PhysicalPruned()
    if config.expires_in is None:
        return outcome
    decided = plan(storage, config, pendulum.now("UTC"))
    verb = "would delete" if dry_run else "deleting"
    for base in decided.expired:
        log.info("%s expired base backup %s (ended %s)", verb, base.label, base.stop_time)
    if decided.wal_keys:
        log.info(
            "%s %d WAL file(s) older than the oldest kept base backup", verb, len(decided.wal_keys)
        )
    if dry_run:
        return outcome
    keys = [key for base in decided.expired for key in base_keys(storage, config.prefix, base)]
    for deletion in storage.delete_everywhere(keys + decided.wal_keys):
        if deletion.locked_until is not None:
            outcome.locked.append(deletion.key)
        elif deletion.error is not None:
            outcome.errors.append(deletion.error)
            log.error("%s", deletion.error)
        else:
            outcome.deleted.append(deletion.key)
    return outcome
