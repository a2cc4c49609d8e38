"""What `moonflower run` adds for point-in-time recovery: the WAL stream (WAL_STREAM=on) and
base backups on BASEBACKUP_SCHEDULE, each in its own thread beside the logical schedule."""

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, MoonflowerError
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import log
from moonflower.core.shutdown import Shutdown
from moonflower.pitr.wal_stream import BACKOFF_MAX_SECONDS, BACKOFF_START_SECONDS
from moonflower.storage.destination import Destination

if TYPE_CHECKING:
    from pathlib import Path

    from moonflower.pitr.wal_stream import WalStreamer

JOIN_SECONDS = 30.0


def stream_alarm(config: Config) -> Callable[[str], None]:
    """A gap in the WAL stream or a lost archive lease, sent as every failed job is: the
    failure webhook and a notification (the status file and the metrics hold the state)."""
    from moonflower.reporting.jobs import failed

    def send(message: str) -> None:
        failed(config, "WAL stream", message)

    return send


@contextlib.contextmanager
def physical_services(
    config: Config, shutdown: Shutdown, destinations: list[Destination]
) -> Iterator[list[threading.Thread]]:
    """Start the WAL stream and the base backup schedule (as configured); stop them on exit."""
    from moonflower.core.state_dir import state_directory
    from moonflower.pitr.archive_writer import streaming_writer
    from moonflower.pitr.wal_archive import WalArchive
    from moonflower.pitr.wal_stream import WalStreamer
    from moonflower.postgres.connection import passfile
    from moonflower.proc.gpg import Encryption
    from moonflower.reporting.status_file import StateFile

    threads: list[threading.Thread] = []
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        if config.wal.stream:
            encryption = stack.enter_context(
                Encryption.open(config.encryption, config.backup.spool_dir)
            )
            password = stack.enter_context(
                passfile(config.postgres.password, config.backup.spool_dir)
            )
            keeper = stack.enter_context(streaming_writer(config, stream_alarm(config)))
            archive = WalArchive(config, destinations[0], encryption, replicas=destinations[1:])
            state = StateFile(state_directory(config.backup))
            streamer = WalStreamer(
                config, archive, password, stop, stream_alarm(config), state.wal_stream
            )
            streamer.writing_refused = lambda: keeper.refused
            program = None
            try:
                program = streamer.prepare()  # no REPLICATION: exit 2 here, before anything
            except ConfigError:
                raise
            except MoonflowerError as error:  # the server is down: the stream waits for it
                log.warning("WAL streaming waits for the server: %s", error)
            supervise = functools.partial(supervised, streamer, program, stop)
            threads.append(threading.Thread(target=supervise, name="wal-stream"))
        if config.wal.basebackup_schedule is not None:
            threads.append(
                threading.Thread(
                    target=base_backup_schedule(config, destinations, stop), name="basebackups"
                )
            )
        for thread in threads:
            thread.daemon = True
            thread.start()
        try:
            yield threads
        finally:
            stop.set()
            for thread in threads:
                thread.join(JOIN_SECONDS)


def supervised(streamer: "WalStreamer", program: "Path | None", stop: threading.Event) -> None:
    """The stream's thread: whatever ends `run` other than a stop request is logged, shown
    in `health` and the metrics as the stream being down, and followed by a restart with a
    backoff of 1 s doubling up to a minute."""
    backoff = BACKOFF_START_SECONDS
    while not stop.is_set():
        try:
            streamer.run(program)
            return
        except Exception as error:
            streamer.mark_down(f"{type(error).__name__}: {error}")
            log.error("the WAL stream failed (%s); restarting it in %.0f s", error, backoff)
        program = None
        if stop.wait(backoff):
            return
        backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)


def guarded(work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except Exception as error:  # a thread's death must be seen, not silent
            log.error("%s stopped: %s", threading.current_thread().name, error)

    return run


def base_backup_schedule(
    config: Config, destinations: list[Destination], stop: threading.Event
) -> Callable[[], None]:
    from moonflower.core.state_dir import state_directory
    from moonflower.daemon.scheduler import Runner
    from moonflower.jobs.base_backup import base_backup
    from moonflower.reporting.status_file import StateFile

    assert config.wal.basebackup_schedule is not None

    def one() -> ExitStatus:
        try:
            return base_backup(config, destinations)  # reported there, failure or not
        except MoonflowerError:
            return ExitStatus.BACKUP_FAILED

    with contextlib.suppress(OSError, MoonflowerError):
        StateFile(state_directory(config.backup)).job_started(
            "basebackup", config.wal.basebackup_schedule.expression
        )
    runner = Runner(
        config.wal.basebackup_schedule, run_once=one, wait=stop.wait, what="base backup"
    )

    def forever() -> None:
        runner.run_forever()

    return guarded(forever)
