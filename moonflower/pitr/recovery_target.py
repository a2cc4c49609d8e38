"""What a cluster restore is asked to reach, whether the archive can reach it, and whether
the recovery did: a restore never claims success short of its target."""

from dataclasses import dataclass

import pendulum

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.core.errors import RestoreError
from moonflower.pitr.recovery_run import Reached
from moonflower.pitr.recovery_window import FOLLOW_LATEST, Follow, Window
from moonflower.postgres.wal_names import format_lsn, parse_lsn, segment_of


@dataclass(frozen=True)
class RecoveryTarget:
    time: pendulum.DateTime | None = None
    lsn: int | None = None
    """Neither: the newest state the archive holds (--latest)."""
    timeline: Follow = None
    """--timeline: None follows the base backup's own timeline (and failovers)."""

    def describe(self) -> str:
        if self.time is not None:
            return f"time {self.time.isoformat()}"
        if self.lsn is not None:
            return f"LSN {format_lsn(self.lsn)}"
        return "the newest archived WAL"

    def settings(self, window: Window) -> list[str]:
        followed = "latest" if self.timeline == FOLLOW_LATEST else str(window.timeline)
        lines = [f"recovery_target_timeline = '{followed}'"]
        if self.time is not None:
            lines.append(f"recovery_target_time = '{self.time.isoformat()}'")
        if self.lsn is not None:
            lines.append(f"recovery_target_lsn = '{format_lsn(self.lsn)}'")
        return lines


def choose_base(bases: list[BaseBackupRecord], target: RecoveryTarget) -> BaseBackupRecord:
    """The newest base backup that ended before the target."""
    if not bases:
        raise RestoreError("choose", "there is no base backup under S3_PATH/base/")
    fitting = bases
    if target.time is not None:
        fitting = [base for base in bases if base.stopped <= target.time]
    elif target.lsn is not None:
        fitting = [base for base in bases if parse_lsn(base.stop_lsn) <= target.lsn]
    if not fitting:
        raise RestoreError(
            "choose",
            f"no base backup ended before {target.describe()}; the oldest ended at "
            f"{bases[0].stop_time} (LSN {bases[0].stop_lsn})",
        )
    return fitting[-1]


def check_reachable(target: RecoveryTarget, base: BaseBackupRecord, window: Window) -> None:
    """Refuse, before anything is written, a target the archive cannot reach."""
    reach = f"the WAL after base backup {base.label} reaches {window.end.isoformat()}"
    if window.gap_after is not None:
        reach += f" and breaks at {window.gap_after} (missing, or only partially archived)"
    if target.time is not None and target.time > window.end:
        raise RestoreError("choose", f"{target.describe()} is out of reach: {reach}")
    if target.lsn is not None and target.lsn > window.end_lsn:
        raise RestoreError(
            "choose",
            f"{target.describe()} is out of reach: {reach}, up to LSN "
            f"{format_lsn(window.end_lsn)} at most",
        )
    if target.time is None and target.lsn is None and window.gap_after is not None:
        raise RestoreError(
            "choose",
            f"--latest cannot reach the newest archived WAL: {reach}. Restore up to the gap "
            "with --time or --lsn, or from a base backup taken after it",
        )


def required_lsn(base: BaseBackupRecord, window: Window) -> int:
    """For --latest: a recovery that replayed the archive reached at least the start of its
    last complete segment (a partial one may hold nothing yet)."""
    complete = window.chain[:-1] if window.last_partial else window.chain
    required = parse_lsn(base.stop_lsn)
    if complete and (segment := segment_of(complete[-1], base.segment_size)) is not None:
        required = max(required, segment.start_lsn)
    return required


def check_reached(
    target: RecoveryTarget, base: BaseBackupRecord, window: Window, reached: Reached
) -> None:
    """After a recovery with --start: fail (exit 1) when it stopped short of the target."""
    redo = parse_lsn(reached.redo_lsn) if reached.redo_lsn else None
    if target.time is not None or target.lsn is not None:
        if reached.stop_reason or (target.lsn is not None and redo and redo >= target.lsn):
            return
        missing = f"recovery ended at {reached.redo_lsn or 'an unknown point'} without reaching "
        raise RestoreError("recover", missing + target.describe())
    required = required_lsn(base, window)
    if redo is None or redo < required:
        raise RestoreError(
            "recover",
            f"recovery ended at {reached.redo_lsn or 'the end of the base backup'}, short of "
            f"the newest archived WAL (LSN {format_lsn(required)} at least): the WAL after it "
            "was not replayed (could the restore_command not fetch it?)",
        )
