"""The scheduler loop with a simulated clock: exact fire times, skips instead of overlaps."""

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from moonflower.config.cron import parse_cron
from moonflower.core.errors import MoonflowerError
from moonflower.core.exit_status import ExitStatus
from moonflower.daemon.scheduler import MAX_IDLE_SECONDS, Runner

UTC = ZoneInfo("UTC")


class SimulatedTime:
    """A clock that only moves when the scheduler waits or a run takes time."""

    def __init__(self, start: datetime, stop_after_runs: int) -> None:
        self.now = start
        self.stop_after_runs = stop_after_runs
        self.starts: list[datetime] = []
        self.run_seconds = 0.0
        self.longest_wait = 0.0

    def clock(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> bool:
        if len(self.starts) >= self.stop_after_runs:
            return True
        self.longest_wait = max(self.longest_wait, seconds)
        self.now += timedelta(seconds=seconds)
        return False

    def run_once(self) -> ExitStatus:
        self.starts.append(self.now)
        self.now += timedelta(seconds=self.run_seconds)
        return ExitStatus.OK


def runner_for(expression: str, time: SimulatedTime) -> Runner:
    return Runner(parse_cron(expression, UTC), time.run_once, time.wait, time.clock)


def test_hundreds_of_runs_start_exactly_on_their_cron_times() -> None:
    start = datetime(2026, 11, 26, 12, 0, 0, 250000, tzinfo=UTC)
    time = SimulatedTime(start, stop_after_runs=500)
    time.run_seconds = 0.7

    status = runner_for("*/2 * * * * *", time).run_forever()

    assert status is ExitStatus.OK
    assert len(time.starts) == 500
    first = datetime(2026, 11, 26, 12, 0, 2, tzinfo=UTC)
    expected = [first + timedelta(seconds=2 * index) for index in range(500)]
    assert time.starts == expected
    assert 0 < time.longest_wait <= MAX_IDLE_SECONDS


def test_a_run_longer_than_the_interval_skips_fires_instead_of_overlapping(
    caplog,
) -> None:
    start = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    time = SimulatedTime(start, stop_after_runs=4)
    time.run_seconds = 7.0

    with caplog.at_level(logging.WARNING, logger="moonflower"):
        runner_for("*/3 * * * * *", time).run_forever()

    gaps = [later - earlier for earlier, later in zip(time.starts, time.starts[1:], strict=False)]
    assert all(gap >= timedelta(seconds=7) for gap in gaps), "runs overlapped"
    assert all(moment.second % 3 == 0 and moment.microsecond == 0 for moment in time.starts)
    assert time.starts[:2] == [start + timedelta(seconds=3), start + timedelta(seconds=12)]
    assert "skipped the run(s) due from" in caplog.text


def test_backup_on_start_runs_at_once_then_follows_the_schedule() -> None:
    start = datetime(2026, 11, 26, 0, 30, 0, tzinfo=UTC)
    time = SimulatedTime(start, stop_after_runs=3)

    runner_for("0 1 * * *", time).run_forever(run_at_start=True)

    assert time.starts == [
        start,
        datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 1, 0, tzinfo=UTC),
    ]


def test_failed_runs_do_not_stop_the_scheduler() -> None:
    start = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    time = SimulatedTime(start, stop_after_runs=3)
    outcomes = iter([ExitStatus.BACKUP_FAILED, MoonflowerError("S3 is down")])

    def failing_run() -> ExitStatus:
        time.run_once()
        outcome = next(outcomes, ExitStatus.OK)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    Runner(parse_cron("* * * * *", UTC), failing_run, time.wait, time.clock).run_forever()

    assert len(time.starts) == 3


def test_schedule_still_calls_the_private_hook_the_cron_job_overrides() -> None:
    """CronJob relies on schedule.Job._schedule_next_run (pinned in pyproject.toml): when a
    new release stops calling it, this fails instead of the scheduler silently never firing."""
    import schedule

    from moonflower.daemon.scheduler import CronJob

    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    scheduler = schedule.Scheduler()
    job = CronJob(parse_cron("0 13 * * *", UTC), lambda: now, scheduler)
    fired: list[int] = []

    job.do(lambda: fired.append(1))

    assert job.fire_at == datetime(2026, 11, 26, 13, 0, 0, tzinfo=UTC)
    now = datetime(2026, 11, 26, 13, 0, 1, tzinfo=UTC)
    scheduler.run_pending()
    assert fired == [1]
    assert job.fire_at == datetime(2026, 11, 27, 13, 0, 0, tzinfo=UTC)


def test_an_unexpected_error_in_a_run_does_not_stop_the_scheduler() -> None:
    start = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    time = SimulatedTime(start, stop_after_runs=3)
    original = time.run_once

    def first_run_breaks() -> ExitStatus:
        status = original()
        if len(time.starts) == 1:
            raise OSError(28, "No space left on device")
        return status

    runner = Runner(parse_cron("*/2 * * * * *", UTC), first_run_breaks, time.wait, time.clock)

    assert runner.run_forever() is ExitStatus.OK
    assert len(time.starts) == 3
