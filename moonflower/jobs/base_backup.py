"""One base backup as a job: reported like a run, then the prune of physical backups."""

import contextlib

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.exit_status import ExitStatus
from moonflower.storage.destination import Destination


def base_backup(config: Config, destinations: list[Destination], full: bool = False) -> ExitStatus:
    """One base backup on every destination, reported like a run (status file, failure
    webhook, notification, metrics), then the prune of physical backups on each destination
    whose expiry or keep rules are set."""
    from moonflower.pitr.basebackup import take_base_backup
    from moonflower.proc.gpg import Encryption
    from moonflower.reporting.jobs import reported

    with (
        reported(config, "basebackup"),
        Encryption.open(config.encryption, config.backup.spool_dir) as encryption,
    ):
        take_base_backup(config, destinations[0], encryption, full, destinations[1:])
    if any(destination.config.prunes for destination in destinations):
        prune_bases(config, destinations)
    return ExitStatus.OK


def prune_bases(config: Config, destinations: list[Destination]) -> None:
    """The prune after a base backup, each destination by its own rules, reported as one
    prune job: a failure (a destination that cannot be reached is skipped and named) is
    seen in `health`, the metrics, the failure webhook and the notifications, and leaves
    the base backup (already stored) standing."""
    from moonflower.reporting.jobs import reported
    from moonflower.retention.prune import Pruner

    with contextlib.suppress(MoonflowerError), reported(config, "prune") as outcome:
        problems = []
        for destination in destinations:
            if not destination.config.prunes:
                continue
            try:
                pruned = Pruner(destination.checked(), destination.config).prune_physical()
            except MoonflowerError as error:
                problems.append(f"{destination.name} skipped: {error}")
                continue
            problems += [f"{destination.name}: {problem}" for problem in pruned.problems]
        if problems:
            outcome.fail("pruning old base backups failed: " + "; ".join(problems))
