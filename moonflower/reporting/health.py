"""`moonflower health`, `/healthz` and `moonflower_healthy`: one verdict from the status file.

Unhealthy: the scheduler or the WAL stream's process is gone without a clean stop; the WAL
stream has a gap, a problem, or has been down for five minutes; the last base backup
failed, or the newest is older than BASEBACKUP_SCHEDULE allows; a required replica's last
store failed; a run is going on longer than BACKUP_TIMEOUT; the last logical run failed.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pendulum

from moonflower.core.liveness import is_alive
from moonflower.reporting.state_shape import JOB_TITLES

STREAM_DOWN_GRACE_SECONDS = 300
"""A server restart or failover takes a minute or two; longer than this is an outage."""
BASEBACKUP = "basebackup"


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str


def parsed(text: object) -> pendulum.DateTime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = pendulum.parse(text)
    except ValueError:
        return None
    return moment if isinstance(moment, pendulum.DateTime) else None


def dictionary(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def pid_of(record: dict[str, Any]) -> int:
    value = record.get("pid")
    return value if isinstance(value, int) else 0


def overdue_run(state: dict[str, Any], too_long: float | None) -> str | None:
    """The start of a run that is still going after `too_long` seconds, if there is one."""
    current = dictionary(state.get("current_run"))
    if too_long is None or not current or not is_alive(pid_of(current)):
        return None
    started = parsed(current.get("started"))
    if started is None:
        return None
    return (
        str(current["started"])
        if pendulum.now("UTC").diff(started).in_seconds() > too_long
        else None
    )


def stream_down_since(stream: dict[str, Any]) -> str | None:
    down = parsed(stream.get("down_since"))
    if down is None or pendulum.now("UTC").diff(down).in_seconds() <= STREAM_DOWN_GRACE_SECONDS:
        return None
    return str(stream["down_since"])


def streaming(stream: dict[str, Any], scheduler: dict[str, Any]) -> bool:
    """Is a live process responsible for this stream state? (Older states had no pid: the
    scheduler's then stood for it.)"""
    if not stream or stream.get("stopped"):
        return False
    return bool(pid_of(stream)) or bool(scheduler)


def stream_verdict(stream: dict[str, Any]) -> Health | None:
    if pid_of(stream) and not is_alive(pid_of(stream)):
        return Health(False, f"the WAL stream's process (pid {pid_of(stream)}) is not running")
    problems = stream.get("problems") or []
    if stream.get("gap") or problems:
        return Health(False, f"WAL stream: {stream.get('gap') or problems[-1]}")
    down = stream_down_since(stream)
    if down is not None:
        return Health(False, f"WAL stream: pg_receivewal has not been running since {down}")
    return None


def stream_text(stream: dict[str, Any]) -> str:
    if not stream.get("running"):
        return "WAL streaming is restarting"
    uploaded = parsed(stream.get("last_archived_at"))
    if uploaded is None:
        return "streaming WAL, nothing uploaded yet"
    seconds = max(0, int(pendulum.now("UTC").diff(uploaded).in_seconds()))
    return f"streaming WAL, last WAL upload {seconds} s ago"


def basebackup_verdict(job: dict[str, Any]) -> Health | None:
    if not job:
        return None
    if job.get("last_ok") is False:
        return Health(
            False,
            f"the last base backup, at {job.get('last_attempt')}, failed: {job.get('last_error')}",
        )
    schedule, since = job.get("schedule"), parsed(job.get("last_success") or job.get("started"))
    if not isinstance(schedule, str) or since is None or not is_alive(pid_of(job)):
        return None
    from moonflower.config.cron import parse_cron

    try:
        cron = parse_cron(schedule, UTC)
    except ValueError:
        return None
    due = cron.next_after(cron.next_after(since))
    if pendulum.now("UTC") > pendulum.instance(due):
        newest = job.get("last_success") or "none since the schedule started"
        return Health(
            False, f"the newest base backup ({newest}) is older than BASEBACKUP_SCHEDULE allows"
        )
    return None


def replica_verdict(stores: dict[str, Any]) -> Health | None:
    """A required replica whose last store failed (an optional one's is only shown)."""
    for name, record in sorted(stores.items()):
        if isinstance(record, dict) and record.get("ok") is False and not record.get("optional"):
            return Health(
                False,
                f"the last store on the replica {name} ({record.get('what')}, at "
                f"{record.get('at')}) failed: {record.get('error')}",
            )
    return None


def job_verdicts(jobs: dict[str, Any]) -> Iterator[Health | None]:
    """Base backups (failed, or overdue on their schedule), then any other job whose last
    attempt failed (`verify`, `prune`): unhealthy until one succeeds."""
    yield basebackup_verdict(dictionary(jobs.get(BASEBACKUP)))
    for kind, title in JOB_TITLES.items():
        if kind == BASEBACKUP:
            continue
        job = dictionary(jobs.get(kind))
        if job.get("last_ok") is False:
            yield Health(
                False,
                f"the last {title}, at {job.get('last_attempt')}, failed: {job.get('last_error')}",
            )


def health(state: dict[str, Any] | None, too_long: float | None = None) -> Health:
    """Healthy: the last run succeeded, or none ran yet and the scheduler is alive (or was
    stopped cleanly), and whatever else runs (the WAL stream, base backups) is well."""
    if state is None:
        return Health(False, "no status file yet: no backup has run and no scheduler started")
    scheduler = dictionary(state.get("scheduler"))
    stream = dictionary(state.get("wal_stream"))
    last = state.get("last_run")
    if scheduler and not is_alive(pid_of(scheduler)):
        return Health(False, f"the scheduler (pid {scheduler.get('pid')}) is not running")
    live_stream = streaming(stream, scheduler)
    for verdict in (
        stream_verdict(stream) if live_stream else None,
        *job_verdicts(dictionary(state.get("jobs"))),
        replica_verdict(dictionary(state.get("destinations"))),
    ):
        if verdict is not None:
            return verdict
    overdue = overdue_run(state, too_long)
    if overdue is not None:
        return Health(
            False, f"the run started {overdue} is still going, longer than BACKUP_TIMEOUT"
        )
    if isinstance(last, dict) and last.get("status") != 0:
        return Health(
            False,
            f"the last run, finished {last.get('finished')}, failed "
            f"(exit status {last.get('status')})",
        )
    if live_stream and (last is None or not scheduler):
        return Health(True, stream_text(stream))
    if last is None and scheduler:
        return Health(True, "scheduler running; no run yet")
    if last is None and state.get("current_run"):
        return Health(True, f"the first run is going since {state['current_run'].get('started')}")
    if last is None:
        stopped = state.get("scheduler_stopped")
        if stopped:
            return Health(True, f"the scheduler stopped cleanly at {stopped}")
        return Health(True, "no logical backup has run yet")
    return Health(True, f"the last run, finished {last.get('finished')}, succeeded")
