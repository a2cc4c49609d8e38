"""What each command does, once the configuration is loaded. cli.py parses arguments and
turns exceptions into exit statuses; the work is here."""

import argparse
import contextlib
import json
from typing import TYPE_CHECKING

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, MoonflowerError
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.reporting.health import health
from moonflower.reporting.status_file import StateFile
from moonflower.reporting.summary import output_console
from moonflower.storage.destination import with_fallback

if TYPE_CHECKING:
    from moonflower.storage.destination import Destination

# Each command imports what only it needs inside its function: a backup must reach pg_dump
# without first loading boto3, rich's tables or croniter (together about half a second).


def prune_now(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> ExitStatus:
    """A prune that deletes is reported as a job (a dry run only answers its caller)."""
    if not config.s3.prunes:
        raise ConfigError(
            [
                'S3_EXPIRES_IN: required by `moonflower prune`, e.g. "30 days", unless a keep '
                "rule is set (BACKUP_KEEP_LAST, BACKUP_KEEP_DAILY, ...)"
            ]
        )
    if arguments.dry_run:
        return (
            ExitStatus.BACKUP_FAILED
            if prune_once(config, destinations, arguments)
            else ExitStatus.OK
        )
    from moonflower.reporting.jobs import reported

    with reported(config, "prune") as outcome:
        problems = prune_once(config, destinations, arguments)
        if problems:
            outcome.fail("; ".join(problems))
            return ExitStatus.BACKUP_FAILED
        return ExitStatus.OK


def prune_once(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> list[str]:
    """Prune (or show what would be pruned) on every destination, each by its own rules and
    safety limit; one that cannot be reached is skipped and named. The problems met."""
    from moonflower.cli.prune_report import print_prune_table, prune_document
    from moonflower.retention.prune import Pruner

    databases = arguments.prune_databases or None
    dry_run, as_json = arguments.dry_run, arguments.json
    named = len(destinations) > 1
    problems: list[str] = []
    documents = []
    for destination in destinations:
        if not destination.config.prunes:
            continue
        where = f"{destination.name}: " if named else ""
        try:
            storage = destination.checked()
            report = Pruner(storage, destination.config).prune(
                databases, dry_run=dry_run, force=arguments.yes
            )
        except MoonflowerError as error:
            if not named:
                raise
            log.error("pruning %s skipped: %s", destination.name, error)
            problems.append(f"{where}{error}")
            continue
        deleted = sum(result == "deleted" for result in report.results.values())
        if deleted:
            with contextlib.suppress(OSError, MoonflowerError):  # the metrics' count only
                StateFile(state_directory(config.backup)).backups_recorded(
                    [], {"pruned_backups": deleted}
                )
        document = prune_document(report, dry_run)
        documents.append({"destination": destination.name, **document} if named else document)
        if not as_json:
            zone = destination.config.retention.timezone
            shown = destination.name if named else ""
            print_prune_table(report, dry_run, zone, output_console(), shown)
        found = report.errors if dry_run else report.problems
        problems += [f"{where}{problem}" for problem in found]
    if as_json:
        output = documents if named else documents[0]
        print(json.dumps(output, indent=2, ensure_ascii=False))
    return problems


def preflight(config: Config, destinations: "list[Destination]") -> ExitStatus:
    from moonflower.cli.preflight import Preflight
    from moonflower.cli.tables import print_checks

    if config.wal.stream:
        replication_allowed(config)
    checks = Preflight(config, destinations[0], destinations[1:]).run()
    print_checks(checks, output_console())
    return ExitStatus.OK if all(check.ok for check in checks) else ExitStatus.BACKUP_FAILED


def replication_allowed(config: Config) -> None:
    """WAL_STREAM needs the REPLICATION attribute: without it, `check` stops at once (exit 2),
    as `run` would."""
    from moonflower.postgres.clients import any_psql
    from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment, passfile
    from moonflower.postgres.replication import require_replication

    pg = config.postgres
    with passfile(pg.password, config.backup.spool_dir) as password:
        environment = libpq_environment(pg, password, MAINTENANCE_DATABASE)
        try:
            require_replication(pg, any_psql(pg.pg_dump_path), environment)
        except ConfigError:
            raise
        except MoonflowerError:
            pass  # the server cannot be asked: the connection checks report why


def report_health(config: Config) -> ExitStatus:
    return report_health_of([config])


def report_health_of(configs: list[Config]) -> ExitStatus:
    """One verdict for every configuration given: unhealthy if any cluster is."""
    from moonflower.reporting.cluster_health import overall

    verdict = overall(configs)
    print(("healthy: " if verdict.ok else "unhealthy: ") + verdict.reason)
    return ExitStatus.OK if verdict.ok else ExitStatus.BACKUP_FAILED


def print_status(config: Config) -> ExitStatus:
    from moonflower.cli.tables import print_state
    from moonflower.reporting.cluster_health import overdue_after

    state = StateFile(state_directory(config.backup))
    shown = state.shown()
    verdict = health(shown, overdue_after(config))  # this configuration's, cluster or not
    print_state(shown, verdict, state.path, output_console())
    return ExitStatus.OK


def list_backups(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> ExitStatus:
    """The primary's backups, else the first replica that answers; `--from` names one,
    `--all-destinations` shows every one's."""
    from moonflower.storage.destination import chosen

    candidates = chosen(destinations, arguments.source)
    every = arguments.all_destinations

    def shown(destination: "Destination") -> list[dict[str, object]]:
        return listed(destination, arguments.list_databases, arguments.json, every)

    listing: list[dict[str, object]] = []
    status = ExitStatus.OK
    if not every:
        listing = with_fallback(candidates, shown, "listing", lambda error: True)
    for destination in candidates if every else []:
        try:
            listing += shown(destination)
        except MoonflowerError as error:
            log.error("%s cannot be listed: %s", destination.name, error)
            status = ExitStatus.BACKUP_FAILED
    if arguments.json:
        print(json.dumps(listing, indent=2, ensure_ascii=False))
    return status


def listed(
    destination: "Destination", databases: list[str], as_json: bool, named: bool
) -> list[dict[str, object]]:
    """One destination's backups: printed as tables, or returned for the JSON listing."""
    from moonflower.catalog.logical import Catalog
    from moonflower.cli.tables import print_backup_list, print_base_list
    from moonflower.pitr.listing import base_backup_listing

    storage = destination.checked()
    backups = Catalog(storage, destination.config).backups(databases or None)
    bases = [] if databases else base_backup_listing(storage, destination.prefix)
    if not as_json:
        print_backup_list(backups, output_console(), destination.name if named else "")
        if bases:
            print_base_list(bases, output_console())
        return []
    where = {"destination": destination.name} if named else {}
    entries: list[dict[str, object]] = [{**info.as_json(), **where} for info in backups]
    return entries + [{"kind": "base", **base.as_json(), **where} for base in bases]


def restore_backup(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> ExitStatus:
    """From the primary, else from each replica in turn when the primary cannot be reached,
    lacks the backup, or holds a copy that fails its checksum; `--from` names one."""
    from moonflower.logical.restore import Restorer
    from moonflower.storage.destination import chosen

    def restore(destination: "Destination") -> None:
        restorer = Restorer(
            config,
            destination.checked(),
            arguments.allow_unverified,
            arguments.overwrite_roles,
            arguments.jobs,
        )
        restorer.restore(
            arguments.restore_database,
            arguments.into,
            arguments.backup,
            arguments.drop_existing,
            with_globals=arguments.globals,
            no_owner=arguments.no_owner,
        )

    with_fallback(chosen(destinations, arguments.source), restore, "restoring")
    return ExitStatus.OK


def first_reachable(candidates: "list[Destination]") -> "Destination":
    """The first destination whose bucket answers (the last one is returned whatever it
    answers, so its own error is the one reported)."""

    def reached(destination: "Destination") -> "Destination":
        destination.checked()
        return destination

    return with_fallback(candidates, reached, "reaching the bucket")


def verify_backups(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> ExitStatus:
    """Reported as a job: a verification that fails is seen in `health`, the metrics, the
    failure webhook and the notifications, not only in its exit status. It reads the
    primary (`--from`: the destination named), or the first replica that answers when the
    primary cannot be reached; a damaged copy is a failure to report, never skipped."""
    from moonflower.storage.destination import chosen

    destination = first_reachable(chosen(destinations, arguments.source))
    from moonflower.cli.tables import print_verify_table
    from moonflower.logical.verify import Verifier
    from moonflower.reporting.jobs import reported

    with reported(config, "verify") as outcome:
        if arguments.physical:
            from moonflower.cli.physical_commands import verify_physical

            return verify_physical(config, destination, arguments.restore, outcome)

        verifier = Verifier(config, destination.checked(), arguments.allow_unverified)
        backups = verifier.select(arguments.verify_databases, arguments.all)
        if not backups:
            log.error("no backups found to verify")
            outcome.fail("no backups found to verify")
            return ExitStatus.BACKUP_FAILED
        results = verifier.verify(backups, trial_restore=arguments.restore)
        print_verify_table(results, output_console())
        failed = [result.info.key for result in results if not result.ok]
        if failed:
            message = f"{len(failed)} backup(s) failed verification: {', '.join(failed)}"
            log.error("%s", message)
            outcome.fail(message)
            return ExitStatus.BACKUP_FAILED
        return ExitStatus.OK


def sync_destinations(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> ExitStatus:
    """Copy to each destination (or the one `--to` names) the logical backups, base backups
    and completed WAL files it lacks; reported as a job unless it is a dry run."""
    from moonflower.cli.tables import print_copies
    from moonflower.logical.sync import sync
    from moonflower.pitr.replica_sync import sync_physical
    from moonflower.reporting.jobs import reported
    from moonflower.storage.destination import chosen

    if len(destinations) < 2:
        raise ConfigError(
            ["REPLICA_<NAME>_S3_BUCKET: `moonflower sync` needs a replica to copy to or from"]
        )
    targets = chosen(destinations, arguments.to)
    spool, state = config.backup.spool_dir, state_directory(config.backup)
    with contextlib.ExitStack() as stack:
        outcome = None if arguments.dry_run else stack.enter_context(reported(config, "sync"))
        copies = sync(destinations, targets, spool, state, arguments.dry_run)
        copies += sync_physical(config, destinations, targets, arguments.dry_run)
        if arguments.json:
            document = [{"to": c.target, "key": c.key, "result": c.result} for c in copies]
            print(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            print_copies(copies, arguments.dry_run, output_console())
        failed = [copy for copy in copies if not copy.ok]
        if not failed:
            return ExitStatus.OK
        message = f"{len(failed)} backup(s) not synced: " + "; ".join(
            f"{copy.target} {copy.key}: {copy.result}" for copy in failed
        )
        log.error("%s", message)
        if outcome is not None:
            outcome.fail(message)
        return ExitStatus.BACKUP_FAILED
