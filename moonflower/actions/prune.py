"""Expiry that really deletes: remove backups older than S3_EXPIRES_IN, never the newest.

Only keys directly under S3_PATH that follow Moonflower's naming scheme are considered;
nothing else in the bucket is ever touched.
"""

from collections.abc import Collection
from dataclasses import dataclass, field

import pendulum

from moonflower.actions.prune_physical import prune_physical
from moonflower.config.durations import Period
from moonflower.config.model import S3Config
from moonflower.output.logs import log
from moonflower.s3.catalog import our_backups
from moonflower.s3.gateway import Storage
from moonflower.s3.keys import BackupKey


@dataclass(frozen=True)
class Decision:
    backup: BackupKey
    size: int
    expires: pendulum.DateTime
    action: str
    """"delete", "keep" (not expired yet) or "keep newest" (expired, but the newest one)."""


@dataclass
class PruneReport:
    decisions: list[Decision] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def decide(
    backups: list[tuple[BackupKey, int]], period: Period, now: pendulum.DateTime
) -> list[Decision]:
    """Newest first per database; the newest backup of a database is always kept."""
    decisions = []
    by_database: dict[str, list[tuple[BackupKey, int]]] = {}
    for backup, size in backups:
        by_database.setdefault(backup.key_name, []).append((backup, size))
    for database in sorted(by_database):
        ordered = sorted(by_database[database], key=lambda item: item[0].created, reverse=True)
        for position, (backup, size) in enumerate(ordered):
            expires = period.after(backup.created)
            if expires > now:
                action = "keep"
            elif position == 0:
                action = "keep newest"
            else:
                action = "delete"
            decisions.append(Decision(backup, size, expires, action))
    return decisions


class Pruner:
    def __init__(self, storage: Storage, config: S3Config) -> None:
        self.storage = storage
        self.config = config

    def prune(self, databases: Collection[str] | None = None, dry_run: bool = False) -> PruneReport:
        period = self.config.expires_in
        assert period is not None, "prune needs S3_EXPIRES_IN"
        report = PruneReport()
        backups = [
            item
            for item in our_backups(self.storage, self.config.prefix)
            if databases is None or item[0].database in databases
        ]
        report.decisions = decide(backups, period, pendulum.now("UTC"))
        doomed = [decision for decision in report.decisions if decision.action == "delete"]
        for decision in report.decisions:
            if decision.action == "keep newest":
                log.info(
                    "keeping %s although it expired: it is the newest backup of %s",
                    decision.backup.key,
                    decision.backup.database,
                )
        if databases is None:  # a prune of everything covers the physical backups too
            physical = prune_physical(self.storage, self.config, dry_run)
            report.deleted += physical.deleted
            report.locked += physical.locked
            report.errors += physical.errors
        if dry_run:
            for decision in doomed:
                log.info("would delete %s (expired %s)", decision.backup.key, decision.expires)
            return report
        for deletion in self.storage.delete_everywhere([d.backup.key for d in doomed]):
            if deletion.locked_until is not None:
                report.locked.append(deletion.key)
                log.info(
                    "%s is locked until %s; a later prune will delete it",
                    deletion.key,
                    deletion.locked_until.isoformat(),
                )
            elif deletion.error is not None:
                report.errors.append(deletion.error)
                log.error("%s", deletion.error)
            else:
                report.deleted.append(deletion.key)
                log.info(
                    "deleted expired backup %s (%d version(s))", deletion.key, deletion.deleted
                )
        return report
