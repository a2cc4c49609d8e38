"""The logical backup run as a job: its webhooks, its line in the status file, its
notification, its metrics and its summary, then the prune of expired backups."""

import contextlib
import json
from typing import TYPE_CHECKING

from moonflower.config.model import Config
from moonflower.config.replicas import PRIMARY
from moonflower.core.errors import MoonflowerError, Terminated
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.reporting.status_file import StateFile
from moonflower.reporting.status_file import now as state_now

if TYPE_CHECKING:
    from moonflower.logical.backup import RunReport
    from moonflower.storage.destination import Destination


def backup_once(config: Config, destinations: "list[Destination]") -> ExitStatus:
    """One run with its webhooks, its line in the status file, its notification and its
    metrics."""
    started = state_now()
    status = ExitStatus.BACKUP_FAILED
    reports: list[RunReport] = []
    with contextlib.suppress(OSError, MoonflowerError):  # reported by record_run at the end
        StateFile(state_directory(config.backup)).run_started(started)
    try:
        status = monitored_backup(config, destinations, reports)
        return status
    except Terminated:
        status = ExitStatus.TERMINATED
        raise
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
        raise
    finally:
        record_run(config, started, status, reports[0] if reports else None)


def record_run(
    config: Config, started: str, status: ExitStatus, report: "RunReport | None"
) -> None:
    from moonflower.reporting.recording import record_backups

    try:
        state = StateFile(state_directory(config.backup))
        record_backups(state, report, status == ExitStatus.OK)
        state.run_finished(started, int(status))
    except (OSError, MoonflowerError) as error:
        log.warning("could not write the status file: %s", error)
    if report is not None and status not in (ExitStatus.TERMINATED, ExitStatus.INTERRUPTED):
        from moonflower.reporting.notify import notify

        notify(config.monitoring, report, status == ExitStatus.OK)
    from moonflower.reporting.jobs import publish_if_configured

    publish_if_configured(config)


def monitored_backup(
    config: Config, destinations: "list[Destination]", reports: list["RunReport"]
) -> ExitStatus:
    """One run with its webhooks: start, then success or failure with the run's log. The
    run's report is added to `reports`."""
    from moonflower.logical.backup import BackupRun
    from moonflower.proc.gpg import Encryption
    from moonflower.reporting.webhooks import Webhooks

    with Webhooks(config.webhooks).monitor() as outcome:
        with Encryption.open(config.encryption, config.backup.spool_dir) as encryption:
            run = BackupRun(config, destinations[0], encryption, prune_expired)
            run.replicas = destinations[1:]
            report = run.run()
        reports.append(report)
        from moonflower.reporting.summary import output_console, print_summary, summary_document

        for result in report.results:
            if result.size_drop and result.ok:
                outcome.warn(f"{result.database}: {result.size_drop}")
            for warning in result.warnings:
                outcome.warn(f"{result.database}: {warning}")
        if report.prune_error:
            outcome.warn(f"pruning expired backups failed: {report.prune_error}")
        if config.logging.format == "text":
            print_summary(report, output_console())
        else:
            print(json.dumps(summary_document(report), ensure_ascii=False), flush=True)
        if report.ok:
            log.info("backup finished: %d database(s) backed up", len(report.results))
            return ExitStatus.OK
        failed = [result.database for result in report.failures]
        if report.error:
            log.error("backup run failed: %s", report.error)
        if failed:
            log.error("backup failed for %d database(s): %s", len(failed), ", ".join(failed))
        outcome.fail(failure_reason(report))
        return ExitStatus.BACKUP_FAILED


def failure_reason(report: "RunReport") -> str:
    reasons = [report.error] if report.error else []
    reasons += [f"{result.database}: {result.error}" for result in report.failures]
    return "; ".join(reason for reason in reasons if reason)


def prune_expired(destination: "Destination", databases: list[str], report: "RunReport") -> None:
    """Expire old backups of the databases just backed up on one destination, by its own
    rules; a failure is reported, not fatal, and never a reason to prune elsewhere."""
    from moonflower.retention.prune import Pruner

    where = "" if destination.name == PRIMARY else f"{destination.name}: "
    try:
        pruned = Pruner(destination.checked(), destination.config).prune(databases)
    except MoonflowerError as error:
        log.error("pruning expired backups %sfailed: %s", f"on {where}" if where else "", error)
        problems = [f"{where}{error}"]
    else:
        report.pruned += sum(result == "deleted" for result in pruned.results.values())
        problems = [f"{where}{problem}" for problem in pruned.problems]
    report.prune_error = "; ".join(filter(None, [report.prune_error, *problems])) or None
