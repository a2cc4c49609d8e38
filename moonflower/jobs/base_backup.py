"""One base backup as a job: reported like a run, then the prune of physical backups."""

from moonflower.config.model import Config
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import log
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
        from moonflower.retention.prune import Pruner

        pruned = Pruner(destination.storage(), config.s3).prune_physical()
        if pruned.problems:
            log.error("pruning old base backups failed: %s", "; ".join(pruned.problems))
    return ExitStatus.OK
