"""`moonflower run` with several clusters: every cluster's logical schedule in a thread of
its own, its base-backup schedule and WAL stream beside it, and one status server for all.

One cluster's failure, hang or time limit never holds up another's: their runs are
independent threads (one cluster's runs never overlap, as with one server). A signal stops
them all: idle schedules end at once, a run in progress is abandoned (its processes
stopped), as `run` does with one server."""

import contextlib
import contextvars
import signal
import threading
from collections.abc import Iterator

from moonflower.config.model import Config
from moonflower.core.errors import Terminated
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import cluster_context, log
from moonflower.core.shutdown import Shutdown, raise_for
from moonflower.daemon.physical_services import physical_services
from moonflower.daemon.run import check_runnable, logical_schedule, status_server
from moonflower.storage.destination import destinations_of

JOIN_SECONDS = 60.0
POLL_SECONDS = 0.5


class Busy:
    """Which clusters are in the middle of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self.died = threading.Event()
        """A cluster's schedule died of an unexpected error."""

    @contextlib.contextmanager
    def running(self, name: str) -> Iterator[None]:
        with self._lock:
            self._running.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(name)

    def any(self) -> bool:
        with self._lock:
            return bool(self._running)


def run_clusters(config: Config, clusters: list[Config], shutdown: Shutdown) -> ExitStatus:
    for cluster in clusters:
        with cluster_context(cluster.cluster):
            check_runnable(cluster)
    busy = Busy()
    with contextlib.ExitStack() as stack:
        for cluster in clusters:
            with cluster_context(cluster.cluster):
                stack.enter_context(physical_services(cluster, shutdown, destinations_of(cluster)))
        stack.enter_context(status_server(config, clusters))
        threads = [scheduled(cluster, shutdown, busy) for cluster in clusters if cluster.schedule]
        log.info(
            "running %d cluster(s): %s", len(clusters), ", ".join(str(c.cluster) for c in clusters)
        )
        return wait_for_stop(shutdown, busy, threads)


def scheduled(cluster: Config, shutdown: Shutdown, busy: Busy) -> threading.Thread:
    """The cluster's logical schedule, started in a thread of its own. Should it die of an
    unexpected error, the whole process stops with a failure, as `run` does with one
    server: a schedule that silently stopped would look healthy."""
    name = str(cluster.cluster)

    def schedule() -> None:
        with cluster_context(name):
            try:
                logical_schedule(
                    cluster, shutdown, destinations_of(cluster), lambda: busy.running(name)
                )
            except Exception as error:
                log.error("the schedule stopped (%s): Moonflower stops", error)
                busy.died.set()
                shutdown.requested.set()

    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(schedule,), name=f"cluster-{name}", daemon=True
    )
    thread.start()
    return thread


def wait_for_stop(shutdown: Shutdown, busy: Busy, threads: list[threading.Thread]) -> ExitStatus:
    """Until a signal: then every run in progress is abandoned and every thread joined."""
    interrupted: BaseException | None = None
    try:
        while not shutdown.requested.wait(POLL_SECONDS):
            pass
    except (Terminated, KeyboardInterrupt) as signal_raised:  # a run was going on
        interrupted = signal_raised
    working = busy.any()
    if working:
        from moonflower.proc.runner import abandon_all

        log.warning("stop requested while a run was going on: it is abandoned")
        abandon_all()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    if interrupted is not None:
        raise interrupted
    if working:
        raise_for(shutdown.received or signal.SIGTERM)
    return ExitStatus.BACKUP_FAILED if busy.died.is_set() else ExitStatus.OK
