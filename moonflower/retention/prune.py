"""Pruning: delete the backups the retention policy no longer keeps, every version of them.

Each database is its own series, the globals another, and the base backups of the cluster a
third (then the WAL that no kept base backup needs goes too). Only keys directly under S3_PATH
that follow Moonflower's naming are considered; nothing else in the bucket is ever touched,
the newest backup of a series is always kept, and with keep rules a prune that would delete
more than BACKUP_PRUNE_MAX_DELETE percent of a series at once is refused.
"""

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import pendulum

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.flags import flag_key, flagged
from moonflower.catalog.keys import GLOBALS_SHOWN, BackupKey
from moonflower.catalog.logical import our_backups
from moonflower.catalog.physical import base_backups
from moonflower.config.model import S3Config
from moonflower.core.logs import log
from moonflower.retention.keep_rules import NEWEST, Policy, reasons_to_keep, refusal
from moonflower.retention.prune_physical import (
    BASE_SERIES,
    WAL_SERIES,
    base_keys,
    unneeded_wal,
    wal_refusal,
)
from moonflower.storage.gateway import Storage

LOGICAL, GLOBALS, BASE = "logical", "globals", "base"


@dataclass(frozen=True)
class Decision:
    series: str
    """The database's name, GLOBALS_SHOWN or BASE_SERIES."""
    kind: str
    key: str
    """The object's key; for a base backup, its label (its folder under base/)."""
    created: pendulum.DateTime
    size: int
    reasons: tuple[str, ...]
    """Why it is kept (rule names, "within <S3_EXPIRES_IN>", "newest"); empty: removed."""

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


@dataclass
class PruneReport:
    decisions: list[Decision] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)
    """What happened to each removed backup: "deleted", "locked" or "failed"."""
    refused: dict[str, str] = field(default_factory=dict)
    """Series whose prune the safety limit refused, with the reason."""
    wal_keys: list[str] = field(default_factory=list)
    """WAL objects no kept base backup needs (deleted, unless a dry run)."""
    locked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refused

    @property
    def problems(self) -> list[str]:
        return [*self.refused.values(), *self.errors]

    @property
    def removed(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep and d.series not in self.refused]


@dataclass(frozen=True)
class Member:
    key: str
    created: pendulum.DateTime
    size: int


def keep_chains(decisions: list[Decision], bases: dict[str, BaseBackupRecord]) -> list[Decision]:
    """A kept incremental base backup keeps every backup it builds on."""
    needed: dict[str, str] = {}
    for decision in decisions:
        if not decision.keep:
            continue
        child, parent = decision.key, bases[decision.key].parent
        while parent is not None and parent in bases and parent not in needed:
            needed[parent] = child
            child, parent = parent, bases[parent].parent
    return [
        replace(decision, reasons=(f"needed by {needed[decision.key]}",))
        if not decision.keep and decision.key in needed
        else decision
        for decision in decisions
    ]


def series_of(backup: BackupKey) -> tuple[str, str]:
    return (GLOBALS_SHOWN, GLOBALS) if backup.is_globals else (backup.database, LOGICAL)


class Pruner:
    def __init__(self, storage: Storage, config: S3Config) -> None:
        self.storage = storage
        self.config = config
        self.policy = Policy(config.retention, config.expires_in)
        self.bases: dict[str, BaseBackupRecord] = {}

    def prune(
        self,
        databases: Collection[str] | None = None,
        dry_run: bool = False,
        force: bool = False,
        logical: bool = True,
    ) -> PruneReport:
        """Without `databases`, every series including the physical backups. `force` lifts
        the safety limit (`prune --yes`)."""
        assert self.config.prunes, "prune needs S3_EXPIRES_IN or a keep rule"
        report = PruneReport()
        now = pendulum.now("UTC")
        for (series, kind), members in self._series(databases, logical).items():
            decisions = self._decide(series, kind, members, now)
            if kind == BASE:
                decisions = keep_chains(decisions, self.bases)
            report.decisions += decisions
            removing = sum(not decision.keep for decision in decisions)
            limit = self.config.retention.max_delete_percent
            refused = refusal(series, len(decisions), removing, limit)
            bounded = self.config.retention.has_rules or kind == BASE
            if refused and bounded and not force:
                report.refused[series] = refused
                log.error("%s", refused)
        if databases is None and self.bases:
            kept = [self.bases[d.key] for d in report.decisions if d.kind == BASE and d.keep]
            if BASE_SERIES in report.refused:
                kept = list(self.bases.values())
            wal = unneeded_wal(self.storage, self.config.prefix, kept)
            refused_wal = wal_refusal(wal, self.config.retention.max_delete_percent)
            if refused_wal and not force:
                report.refused[WAL_SERIES] = refused_wal
                log.error("%s", refused_wal)
            else:
                report.wal_keys = wal.keys
        verb = "would delete" if dry_run else "deleting"
        for decision in report.removed:
            log.info("%s %s (created %s)", verb, decision.key, decision.created.isoformat())
        if report.wal_keys:
            log.info("%s %d WAL file(s) no kept base backup needs", verb, len(report.wal_keys))
        if not dry_run:
            self._delete(report)
        return report

    def prune_physical(self) -> PruneReport:
        """The base backups and the WAL alone (after a base backup)."""
        return self.prune(logical=False)

    def _series(
        self, databases: Collection[str] | None, logical: bool
    ) -> dict[tuple[str, str], list[Member]]:
        found: dict[tuple[str, str], list[Member]] = {}
        for backup, size in our_backups(self.storage, self.config.prefix) if logical else []:
            if databases is None or backup.database in databases:
                found.setdefault(series_of(backup), []).append(
                    Member(backup.key, backup.created, size)
                )
        if databases is None:  # a prune of everything covers the physical backups too
            for base in base_backups(self.storage, self.config.prefix):
                self.bases[base.label] = base
                found.setdefault((BASE_SERIES, BASE), []).append(
                    Member(base.label, base.stopped, base.size)
                )
        return found

    def _decide(
        self, series: str, kind: str, members: list[Member], now: pendulum.DateTime
    ) -> list[Decision]:
        ordered = sorted(members, key=lambda member: (member.created, member.key), reverse=True)
        reasons = reasons_to_keep([member.created for member in ordered], self.policy, now)
        decisions = [
            Decision(series, kind, member.key, member.created, member.size, why)
            for member, why in zip(ordered, reasons, strict=True)
        ]
        if decisions and decisions[0].reasons == (NEWEST,) and not self.policy.retention.rules:
            log.info(
                "keeping %s although it expired: it is the newest backup of %s",
                decisions[0].key,
                series,
            )
        return decisions

    def _delete(self, report: PruneReport) -> None:
        owner: dict[str, str] = {}
        marked = flagged(self.storage, self.config.prefix) if report.removed else set()
        for decision in report.removed:
            if decision.kind == BASE:
                for key in base_keys(self.storage, self.config.prefix, self.bases[decision.key]):
                    owner[key] = decision.key
            else:
                owner[decision.key] = decision.key
                if decision.key.rsplit("/", 1)[-1] in marked:  # its size-check flag goes too
                    owner[flag_key(self.config.prefix, decision.key)] = decision.key
        for key in report.wal_keys:
            owner[key] = key
        for deletion in self.storage.delete_everywhere(list(owner)):
            backup = owner[deletion.key]
            if deletion.locked_until is not None:
                report.locked.append(deletion.key)
                report.results[backup] = "locked"
                log.info(
                    "%s is locked until %s; a later prune will delete it",
                    deletion.key,
                    deletion.locked_until.isoformat(),
                )
            elif deletion.error is not None:
                report.errors.append(deletion.error)
                report.results[backup] = "failed"
                log.error("%s", deletion.error)
            else:
                report.results.setdefault(backup, "deleted")
                log.info("deleted %s (%d version(s))", deletion.key, deletion.deleted)
