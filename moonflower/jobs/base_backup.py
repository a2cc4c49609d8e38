"""One base backup as a job: reported like a run, then the prune of physical backups."""

import contextlib

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.exit_status import ExitStatus
from moonflower.storage.destination import Destination


def base_backup(config: Config, destination: Destination, full: bool = False) -> ExitStatus:
    """One base backup, reported like a run (status file, failure webhook, notification,
    metrics), then the prune of physical backups when expiry or keep rules are set."""
    from moonflower.pitr.basebackup import take_base_backup
    from moonflower.proc.gpg import Encryption
    from moonflower.reporting.jobs import reported

    with (
        reported(config, "basebackup"),
        Encryption.open(config.encryption, config.backup.spool_dir) as encryption,
    ):
        take_base_backup(config, destination, encryption, full)
    if config.s3.prunes:
        prune_bases(config, destination)
    return ExitStatus.OK


def prune_bases(config: Config, destination: Destination) -> None:
    """The prune after a base backup, reported as a prune job: a failure is seen in
    `health`, the metrics, the failure webhook and the notifications, and leaves the base
    backup (already stored) standing."""
    from moonflower.reporting.jobs import reported
    from moonflower.retention.prune import Pruner

    with contextlib.suppress(MoonflowerError), reported(config, "prune") as outcome:
        pruned = Pruner(destination.storage(), config.s3).prune_physical()
        if pruned.problems:
            outcome.fail("pruning old base backups failed: " + "; ".join(pruned.problems))
