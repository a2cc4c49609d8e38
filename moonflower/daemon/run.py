"""`moonflower run`: the logical schedule, the physical services beside it and the status
server, until a signal stops them."""

import contextlib
from typing import TYPE_CHECKING

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import log
from moonflower.core.shutdown import Shutdown
from moonflower.core.state_dir import state_directory
from moonflower.jobs.backup import backup_once
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import Destination

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager


def run_scheduler(
    config: Config, shutdown: Shutdown, destinations: list[Destination]
) -> ExitStatus:
    from moonflower.daemon.physical_services import physical_services

    check_runnable(config)
    with (
        physical_services(config, shutdown, destinations),
        status_server(config, [config]),
    ):
        if config.schedule is None:
            log.info("no SCHEDULE: only physical backups run, until stopped")
            while not shutdown.requested.wait(1.0):
                pass
            return ExitStatus.OK
        return logical_schedule(config, shutdown, destinations)


def check_runnable(config: Config) -> None:
    """Something to run (a SCHEDULE or point-in-time recovery) and a usable key, or exit 2
    now rather than at the first fire."""
    from moonflower.config.cron import EXAMPLES
    from moonflower.proc.gpg import Encryption

    physical = config.wal.stream or config.wal.basebackup_schedule is not None
    if config.schedule is None and not physical:
        setting = f"CLUSTER_{config.cluster.upper()}_SCHEDULE or " if config.cluster else ""
        raise ConfigError([f"{setting}SCHEDULE: required by `moonflower run`, e.g. {EXAMPLES}"])
    with Encryption.open(config.encryption, config.backup.spool_dir):
        pass


@contextlib.contextmanager
def status_server(config: Config, configs: list[Config]) -> "Iterator[None]":
    """METRICS_ADDRESS: /metrics, /healthz and the status page while `run` runs, for the
    one server or every cluster."""
    if config.monitoring.metrics_host is None:
        yield
        return
    from moonflower.reporting.server import StatusServer

    with StatusServer(config, configs):
        yield


def logical_schedule(
    config: Config,
    shutdown: Shutdown,
    destinations: list[Destination],
    guard: "Callable[[], AbstractContextManager[None]] | None" = None,
) -> ExitStatus:
    """The logical backups on SCHEDULE; `guard` around each run (by default: a signal
    abandons it, in this the main thread)."""
    from moonflower.daemon.scheduler import Runner
    from moonflower.proc.children import reap_orphans

    assert config.schedule is not None
    around = guard or shutdown.working

    def guarded_run() -> ExitStatus:
        with around():
            return backup_once(config, destinations)

    state = StateFile(state_directory(config.backup))
    state.scheduler_started(config.schedule.expression)
    runner = Runner(
        config.schedule,
        run_once=guarded_run,
        wait=shutdown.requested.wait,
        between_runs=reap_orphans,
        on_next=state.next_run,
    )
    try:
        return runner.run_forever(run_at_start=config.backup.on_start)
    finally:  # a signal stops it cleanly too; only a killed scheduler leaves its pid behind
        with contextlib.suppress(OSError):
            state.scheduler_stopped()
