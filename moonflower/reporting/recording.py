"""What a finished run leaves in the status file for the metrics and the status page."""

from typing import TYPE_CHECKING, Any

from moonflower.core.counters import taken
from moonflower.core.logs import log
from moonflower.core.redact import redactor
from moonflower.proc.codec import ENCRYPTED_SUFFIX
from moonflower.reporting.status_file import StateFile, now

if TYPE_CHECKING:
    from moonflower.logical.backup import RunReport


def backup_entries(report: "RunReport", finished: str) -> list[dict[str, Any]]:
    return [
        {
            "database": redactor.mask(result.database),
            "time": finished,
            "ok": result.ok,
            "size": result.size if result.ok else None,
            "seconds": round(result.seconds, 3),
            "key": result.key,
            "encrypted": bool(result.key and result.key.endswith(ENCRYPTED_SUFFIX)),
            "size_drop": redactor.mask(result.size_drop) if result.size_drop else None,
            "error": redactor.mask(result.error) if result.error else None,
            "stored_on": (["primary"] if result.key else []) + sorted(result.copies),
        }
        for result in report.results
    ]


def run_counts(report: "RunReport | None", ok: bool) -> dict[str, int]:
    counts = {"runs": 1, "failed_runs": 0 if ok else 1, **taken()}
    if report is not None:
        succeeded = [result for result in report.results if result.ok]
        counts["backups"] = len(succeeded)
        counts["backup_failures"] = len(report.results) - len(succeeded)
        counts["uploaded_bytes"] = sum(result.size for result in succeeded)
        counts["size_drops"] = sum(result.size_drop is not None for result in report.results)
        counts["pruned_backups"] = report.pruned
    return counts


def record_backups(state: StateFile, report: "RunReport | None", ok: bool) -> None:
    """Never fails the run: a status file that cannot be written is a warning."""
    entries = backup_entries(report, now()) if report is not None else []
    try:
        state.backups_recorded(entries, run_counts(report, ok))
    except OSError as error:
        log.warning("could not record the run in the status file: %s", error)
