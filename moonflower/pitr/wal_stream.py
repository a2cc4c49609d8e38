"""The WAL stream: a supervised `pg_receivewal` writing into a directory of the spool, and a
loop that archives what it completes and, every WAL_PUSH_INTERVAL, the segment it is writing.

Everything that can go wrong here is ordinary: pg_receivewal exits (server restart, failover,
network), S3 is down. The child is restarted with backoff; completed segments stay in the
directory until S3 has them (the directory outlives Moonflower restarts); the replication slot
keeps the server from removing WAL nobody has received. What cannot be repaired — the slot
was dropped, the server removed WAL — is a gap: reported loudly, and the next base backup
starts a new unbroken chain.
"""

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pendulum

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, MoonflowerError, WalError
from moonflower.core.logs import log
from moonflower.core.shutdown import shutdown
from moonflower.pitr.wal_archive import WalArchive
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment
from moonflower.postgres.replication import drop_slot, ensure_slot, slot_lag
from moonflower.postgres.wal_names import PARTIAL_SUFFIX, is_history, segment_of
from moonflower.proc.runner import Pipeline, Stage

BACKOFF_START_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
SLOT_LAG_SECONDS = 30.0
"""How often the server is asked how much WAL it keeps for the slot (for the metrics)."""
GAP_MESSAGES = ("has already been removed", "does not exist", "invalidated")
"""pg_receivewal's words when the WAL it needs is gone: removed by the server, the slot that
held it dropped, or invalidated (max_slot_wal_keep_size)."""
ROUND_SLICE_SECONDS = 0.1
GAP_CHECK_SECONDS = 10.0
"""While a gap is reported, how often the bucket is asked for a base backup taken after it."""
STREAM_DIRECTORY = "wal-stream"
SPOOL_ALARM = "completed WAL waiting for S3 exceeds WAL_SPOOL_LIMIT: the archive is falling behind"


@dataclass
class StreamState:
    """What `status` and `health` show of the stream."""

    running: bool = False
    last_archived: str | None = None
    last_archived_at: str | None = None
    """When the newest WAL file reached S3 (UTC, ISO 8601)."""
    slot_lag_bytes: int | None = None
    """WAL the server keeps for the slot, asked every SLOT_LAG_SECONDS."""
    waiting_bytes: int = 0
    restarts: int = 0
    problems: list[str] = field(default_factory=list)
    gap: str | None = None
    gap_since: str | None = None
    down_since: str | None = None
    """When pg_receivewal last stopped without getting going again (UTC, ISO 8601)."""
    last_error: str | None = None
    stopped: str | None = None
    """When the stream was stopped on request (`run` ending): nothing to watch any more."""
    pid: int = field(default_factory=os.getpid)
    """The process streaming: `health` trusts this state only while it runs."""


def stream_directory(config: Config) -> Path:
    """Kept between runs: completed segments wait here until S3 has them (one directory
    per cluster and slot)."""
    cluster = f"{config.cluster}-" if config.cluster else ""
    return config.backup.spool_dir / f"{STREAM_DIRECTORY}-{cluster}{config.wal.slot}"


def waiting_files(directory: Path) -> list[Path]:
    """Completed segments and history files, oldest first (history files before the
    segments of their timeline)."""
    names = [
        entry
        for entry in directory.iterdir()
        if is_history(entry.name)
        or (segment_of(entry.name) and not entry.name.endswith(PARTIAL_SUFFIX))
    ]
    return sorted(names, key=lambda path: (path.name[:8], not is_history(path.name), path.name))


class WalStreamer:
    def __init__(
        self,
        config: Config,
        archive: WalArchive,
        password_file: Path,
        stop: threading.Event,
        on_gap: Callable[[str], None] = lambda reason: None,
        on_state: Callable[[dict[str, Any]], None] = lambda state: None,
    ) -> None:
        self.config = config
        self.archive = archive
        self.stop = stop
        self.on_gap = on_gap
        self.on_state = on_state
        self._shown: dict[str, Any] = {}
        self.directory = stream_directory(config)
        self.state = StreamState()
        pg = config.postgres
        self.environment = libpq_environment(pg, password_file, MAINTENANCE_DATABASE)
        self._partial_seen: dict[str, float] = {}
        self._conflicts: list[str] = []
        self._spool_alarm = False
        self._lag_measured = -SLOT_LAG_SECONDS
        self._gap_checked = -GAP_CHECK_SECONDS
        self.writing_refused: Callable[[], str | None] = lambda: None
        """Why this process may not write into the archive now (its lease is not taken, or
        was taken over): what it receives waits in the spool meanwhile."""

    def prepare(self) -> Path:
        """The directory, the right pg_receivewal, and the replication slot (created when
        missing: a new slot is where a new chain starts)."""
        program = ensure_slot(self.config.postgres, self.config.wal.slot, self.environment)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        return program

    def receiver(self, program: Path) -> Stage:
        argv = [
            str(program),
            f"--directory={self.directory}",
            f"--slot={self.config.wal.slot}",
            "--no-loop",
            "--no-password",
            "--verbose",
        ]
        return Stage("pg_receivewal", argv, self.environment)

    def run(self, program: Path | None = None) -> None:
        """Until `stop` is set: keep pg_receivewal running and the archive up to date.
        `program` is the pg_receivewal that `prepare` found (None: find it here, waiting
        for the server as long as it takes)."""
        backoff = BACKOFF_START_SECONDS
        while program is None:
            try:
                program = self.prepare()
            except ConfigError:
                raise
            except MoonflowerError as error:
                log.warning(
                    "WAL streaming cannot start yet (%s); retrying in %.0f s", error, backoff
                )
                if self.stop.wait(backoff):
                    return
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
        backoff = BACKOFF_START_SECONDS
        while not self.stop.is_set() and not shutdown.abandoned.is_set():
            started = time.monotonic()
            with Pipeline([self.receiver(program)]) as receiver:
                self.state.running = True
                log.info("WAL streaming started (slot %s)", self.config.wal.slot)
                while not self.stop.is_set() and any(p.is_alive() for p in receiver.processes):
                    self.measure_slot_lag()
                    self.heal_gap()
                    self.archive_waiting()
                    if any(p.is_alive() for p in receiver.processes):
                        self.state.down_since = None  # it got past its start
                    self.wait_round(receiver)
                self.state.running = False
                stopping = self.stop.is_set()
                receiver.terminate()
                reason = receiver.tails[0].text()
            self.archive_waiting(final=True)
            if stopping or shutdown.abandoned.is_set():  # the process is being stopped
                break
            self.state.restarts += 1
            self.state.down_since = self.state.down_since or pendulum.now("UTC").isoformat()
            self.publish()
            if any(message in reason for message in GAP_MESSAGES):
                self.report_gap(reason)
                self.set_aside_partials()
                # The slot's reservation points into WAL that is gone: a new slot (made by
                # `prepare`) starts the new chain where the server still has WAL.
                with contextlib.suppress(MoonflowerError):
                    drop_slot(self.config.postgres, self.config.wal.slot, self.environment)
            if time.monotonic() - started > BACKOFF_MAX_SECONDS:
                backoff = BACKOFF_START_SECONDS
            log.warning("pg_receivewal stopped (%s); restarting in %.0f s", reason or "?", backoff)
            if self.stop.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
            with contextlib.suppress(MoonflowerError):
                program = self.prepare()
        self.state.running = False
        self.state.stopped = pendulum.now("UTC").isoformat()
        self.publish()
        log.info("WAL streaming stopped")

    def wait_round(self, receiver: Pipeline) -> None:
        """Until the next push, a stop request, or the receiver's end, whichever comes first:
        when the server goes away, the last WAL it sent leaves for S3 at once, not up to
        WAL_PUSH_INTERVAL later (a host that dies meanwhile would lose it)."""
        deadline = time.monotonic() + self.config.wal.push_interval
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if receiver.ended(min(left, ROUND_SLICE_SECONDS)):
                return

    def mark_down(self, reason: str) -> None:
        """The stream stopped on an error: not running, and down since now (unless it
        already was)."""
        self.state.running = False
        self.state.down_since = self.state.down_since or pendulum.now("UTC").isoformat()
        self.state.last_error = reason
        self.publish()

    def measure_slot_lag(self) -> None:
        if time.monotonic() - self._lag_measured < SLOT_LAG_SECONDS:
            return
        self._lag_measured = time.monotonic()
        try:
            self.state.slot_lag_bytes = slot_lag(
                self.config.postgres, self.config.wal.slot, self.environment
            )
        except MoonflowerError as error:
            log.debug("slot lag not measured: %s", error)

    def archive_waiting(self, final: bool = False) -> None:
        """Upload every completed file (then remove it), and the partial segment when it
        changed; S3 being down leaves everything in place for the next round."""
        if self.writing_refused() is not None:  # received WAL waits in the spool
            self.check_spool()
            self.publish()
            return
        # The partials are seen before the completed files are listed: pg_receivewal may
        # complete a segment and start the next in between, and a partial seen after that
        # would go up ahead of the segment before it (a gap, if the host then dies).
        partials = sorted(self.directory.glob("*" + PARTIAL_SUFFIX))
        try:
            for path in waiting_files(self.directory):
                self.archive.push(path)
                path.unlink()
                self.state.last_archived = path.name
                self.state.last_archived_at = pendulum.now("UTC").isoformat()
            for partial in partials:
                modified = partial.stat().st_mtime
                if final or self._partial_seen.get(partial.name) != modified:
                    self.archive.push_partial(partial)
                    self._partial_seen[partial.name] = modified
                    self.state.last_archived_at = pendulum.now("UTC").isoformat()
        except FileNotFoundError:
            return  # pg_receivewal renamed the partial while it was read: next round
        except WalError as error:  # the archive holds other content under this name
            if str(error) not in self._conflicts:
                self._conflicts.append(str(error))
                log.error("%s", error)
                self.on_gap(str(error))
        except MoonflowerError as error:
            log.warning("WAL not archived yet, will retry: %s", error)
        self.check_spool()
        self.publish()

    def publish(self) -> None:
        """Hand the state to `status`/`health` when it changed."""
        summary = asdict(self.state)
        if summary != self._shown:
            self._shown = summary
            with contextlib.suppress(OSError, MoonflowerError):
                self.on_state(summary)

    def check_spool(self) -> None:
        """The alarm while completed WAL waiting for S3 exceeds WAL_SPOOL_LIMIT (raised
        once when it starts, cleared when the archive has caught up)."""
        waiting = sum(path.stat().st_size for path in waiting_files(self.directory))
        self.state.waiting_bytes = waiting
        over = waiting > self.config.wal.spool_limit
        if over and not self._spool_alarm:
            log.error(
                "%d MiB of WAL wait for S3 in %s, more than WAL_SPOOL_LIMIT: the archive is "
                "falling behind",
                waiting // 1024**2,
                self.directory,
            )
        elif self._spool_alarm and not over:
            log.info("the WAL archive has caught up")
        self._spool_alarm = over
        alarm = [SPOOL_ALARM] if over else []
        refused = self.writing_refused()
        self.state.problems = [*self._conflicts, *alarm, *([refused] if refused else [])]

    def set_aside_partials(self) -> None:
        """After a gap, pg_receivewal must start from the slot, not resume the segment it
        was writing (the server no longer has what follows it): the partial goes up once
        more and leaves the directory (renamed `.gap` when S3 cannot take it now)."""
        for partial in self.directory.glob("*" + PARTIAL_SUFFIX):
            try:
                self.archive.push_partial(partial)
                partial.unlink()
            except MoonflowerError as error:
                log.warning("%s kept as %s.gap: %s", partial.name, partial.name, error)
                partial.rename(partial.with_name(partial.name + ".gap"))

    def heal_gap(self) -> None:
        """A base backup taken after the gap starts a new unbroken chain: the alarm ends."""
        if self.state.gap is None or time.monotonic() - self._gap_checked < GAP_CHECK_SECONDS:
            return
        self._gap_checked = time.monotonic()
        from moonflower.catalog.physical import base_backups

        try:
            bases = base_backups(self.archive.storage(), self.config.s3.prefix)
        except MoonflowerError as error:
            log.debug("base backups not listed: %s", error)
            return
        since = pendulum.parse(self.state.gap_since or "")
        if bases and isinstance(since, pendulum.DateTime) and bases[-1].stopped > since:
            log.info(
                "base backup %s was taken after the gap: recovery from it has an unbroken "
                "chain again",
                bases[-1].label,
            )
            self.state.gap = self.state.gap_since = None
            self.publish()

    def report_gap(self, reason: str) -> None:
        message = (
            f"the WAL chain has a gap ({reason}); recovery past it is impossible until the "
            "next base backup starts a new chain"
        )
        self.state.gap = message
        self.state.gap_since = pendulum.now("UTC").isoformat()
        self.publish()
        log.error("%s", message)
        self.on_gap(message)
