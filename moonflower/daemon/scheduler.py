"""Scheduled mode: the `schedule` library's loop, driven by cron fire times.

Each fire time is computed from the previous fire time, never from "now", so wake-ups do not
drift. Runs happen in the main thread, one at a time: a fire that comes while a run is still
going is skipped with a warning.
"""

from collections.abc import Callable
from datetime import UTC, datetime

import pendulum
import schedule
from pendulum.tz import local_timezone

from moonflower.config.cron import CronSchedule
from moonflower.core.errors import MoonflowerError
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import local_time, log

MAX_IDLE_SECONDS = 0.5
"""Upper bound of one wait: a changed system clock is noticed, and a signal that lands in
another thread is handled promptly (Python runs handlers in the main thread only)."""

Clock = Callable[[], datetime]
Wait = Callable[[float], bool]
"""Waits up to the given seconds; returns True when the process should stop."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def describe_time(moment: datetime, now: datetime) -> str:
    wait = pendulum.instance(now).diff(pendulum.instance(moment))
    return f"{local_time(moment)} (in {wait.in_words()})"


class CronJob(schedule.Job):
    """A schedule.Job whose next run is the next cron fire time, in real (UTC) time."""

    def __init__(self, cron: CronSchedule, clock: Clock, scheduler: schedule.Scheduler) -> None:
        super().__init__(interval=1, scheduler=scheduler)
        self.unit = "seconds"
        self.cron = cron
        self.clock = clock
        self.fire_at: datetime | None = None

    @property
    def should_run(self) -> bool:
        return self.fire_at is not None and self.clock() >= self.fire_at

    def _schedule_next_run(self) -> None:
        now = self.clock()
        upcoming = self.cron.next_after(self.fire_at or now)
        if upcoming < now:
            first_missed = upcoming
            upcoming = self.cron.next_after(now)
            log.warning(
                "skipped the run(s) due from %s: the previous run was still going",
                local_time(first_missed),
            )
        self.fire_at = upcoming.astimezone(UTC)
        self.next_run = upcoming.astimezone(local_timezone()).replace(tzinfo=None)


class Runner:
    def __init__(
        self,
        cron: CronSchedule,
        run_once: Callable[[], ExitStatus],
        wait: Wait,
        clock: Clock = utc_now,
        between_runs: Callable[[], None] = lambda: None,
        on_next: Callable[[datetime], None] = lambda moment: None,
        what: str = "backup",
    ) -> None:
        self.cron = cron
        self.run_once = run_once
        self.wait = wait
        self.clock = clock
        self.between_runs = between_runs
        self.on_next = on_next
        self.what = what
        self.scheduler = schedule.Scheduler()
        self.runs = 0

    def run_forever(self, run_at_start: bool = False) -> ExitStatus:
        """Run until `wait` reports a stop request; a run in progress is never cut short here."""
        log.info(
            "%s scheduler started: %s (%s)", self.what, self.cron.expression, local_timezone().name
        )
        if run_at_start:
            log.info("BACKUP_ON_START: running one backup now")
            self._fire()
        job = CronJob(self.cron, self.clock, self.scheduler)
        job.do(self._fire)
        self._announce(job)
        while True:
            runs_before = self.runs
            self.scheduler.run_pending()
            if self.runs != runs_before:
                self._announce(job)
            assert job.fire_at is not None
            delay = (job.fire_at - self.clock()).total_seconds()
            if self.wait(min(max(delay, 0.0), MAX_IDLE_SECONDS)):
                log.info("stop requested while idle; scheduler exits")
                return ExitStatus.OK
            self.between_runs()

    def _fire(self) -> None:
        self.runs += 1
        log.info("scheduled run %d starting", self.runs)
        try:
            status = self.run_once()
        except MoonflowerError as error:
            log.error("scheduled run %d could not run: %s", self.runs, error)
            status = ExitStatus.BACKUP_FAILED
        except Exception as error:  # whatever broke one run, the next one still comes
            log.error(
                "scheduled run %d failed unexpectedly (%s: %s); the scheduler carries on",
                self.runs,
                type(error).__name__,
                error,
            )
            status = ExitStatus.BACKUP_FAILED
        outcome = "ok" if status == ExitStatus.OK else "failed"
        log.info("scheduled run %d finished: exit status %d (%s)", self.runs, status, outcome)

    def _announce(self, job: CronJob) -> None:
        if job.fire_at is not None:
            log.info("next %s at %s", self.what, describe_time(job.fire_at, self.clock()))
            self.on_next(job.fire_at)
