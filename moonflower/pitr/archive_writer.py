"""This process as the WAL archive's one writer: the lease taken before the first push,
renewed every WAL_PUSH_INTERVAL while the stream runs, given back at a clean stop."""

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pendulum

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.liveness import is_alive
from moonflower.core.logs import log
from moonflower.core.ownership import lease as run_lease
from moonflower.pitr.writer_lease import ArchiveHeld, Holder, LeaseLost, WriterLease

STREAM = "stream"
WAL_PUSH = "wal-push"
MIN_RENEW_SECONDS = 1.0


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def this_process(kind: str, writer: str) -> Holder:
    return Holder(
        writer=writer,
        kind=kind,
        host=socket.gethostname(),
        pid=os.getpid(),
        process_start=process_start(os.getpid()),
        since=pendulum.now("UTC").isoformat(),
    )


def gone_from_this_host(holder: Holder) -> bool:
    """A streaming writer on this host whose process is no longer running (killed, or the
    previous life of this container): its lease need not be waited out."""
    if holder.kind != STREAM or holder.host != socket.gethostname():
        return False
    if holder.pid == os.getpid():
        return holder.process_start != process_start(os.getpid())
    return not is_alive(holder.pid) or process_start(holder.pid) != holder.process_start


def renew_seconds(config: Config) -> float:
    return max(config.wal.push_interval, MIN_RENEW_SECONDS)


def archive_lease(config: Config, me: Holder) -> WriterLease:
    return WriterLease(config.s3, me, renew_seconds(config), gone_from_this_host)


def honour_for_push(config: Config) -> None:
    """wal-push: refused (ArchiveHeld) while another writer holds the archive. It takes no
    lease itself: PostgreSQL calls it once per segment, minutes apart on a quiet server, so
    a lease of its own would be stale between calls and protect nothing."""
    lease = archive_lease(config, this_process(WAL_PUSH, f"{WAL_PUSH}:{socket.gethostname()}"))
    lease.check_free()


def writer_shown(config: Config) -> str:
    """Who holds the WAL archive now, for `check`."""
    lease = archive_lease(config, this_process(STREAM, "check"))
    seen = lease.look()
    if seen is None:
        return "none holds the WAL archive's lease"
    stale = "; stale: the next writer takes it over" if lease.stale(seen) else ""
    return f"{seen.describe()}{stale}"


class LeaseKeeper:
    """Renews the lease in its own thread. While this writer does not hold it (S3 could not
    be asked at the start, or another writer took it over), `refused` says why: the stream
    pushes nothing, and the keeper tries to take the lease each period. A takeover is
    reported once to `on_lost` (the failure webhook)."""

    def __init__(self, lease: WriterLease, period: float, on_lost: Callable[[str], None]) -> None:
        self.lease = lease
        self.period = period
        self.on_lost = on_lost
        self.refused: str | None = None
        self._reported = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="wal-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.period + 30.0)

    def refuse(self, why: str, report: bool) -> None:
        self.refused = why
        if report and not self._reported:
            self._reported = True
            log.error("%s", why)
            self.on_lost(why)

    def _keep(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self._once()
            except MoonflowerError as error:  # S3 unreachable: the lease ages, next period
                log.warning("the WAL archive's lease was not renewed: %s", error)

    def _once(self) -> None:
        if self.refused is None:
            try:
                self.lease.renew()
            except LeaseLost as error:
                self.refuse(str(error), report=True)
            return
        try:
            self.lease.claim()
        except ArchiveHeld as error:
            self.refuse(str(error), report=True)
            return
        log.info("the WAL archive's lease is this writer's: pushing the WAL that waited")
        self.refused = None
        self._reported = False


@contextlib.contextmanager
def streaming_writer(config: Config, on_lost: Callable[[str], None]) -> Iterator[LeaseKeeper]:
    """Hold the archive while `run` streams into it: ArchiveHeld (exit 2) when another
    writer does. When S3 cannot be asked now, the stream starts and its WAL waits in the
    spool until the lease is taken."""
    lease = archive_lease(config, this_process(STREAM, f"{STREAM}:{run_lease.token}"))
    keeper = LeaseKeeper(lease, renew_seconds(config), on_lost)
    try:
        lease.claim()
    except ArchiveHeld:
        raise
    except MoonflowerError as error:
        log.warning("the WAL archive's lease cannot be taken yet: %s", error)
        keeper.refuse(f"the WAL archive's lease is not taken yet ({error})", report=False)
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()
        lease.release()
