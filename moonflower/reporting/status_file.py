"""A small status file: the scheduler's pid, the last run's result, the next run's time.

`moonflower health` (a container HEALTHCHECK) and `moonflower status` read it.
"""

import contextlib
import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum

from moonflower.core.logs import log
from moonflower.core.state_dir import write_json
from moonflower.reporting.state_shape import history_problems, state_problems
from moonflower.storage.store_record import last_stores

STATE_NAME = f"moonflower-state-{os.getuid()}.json"
HISTORY_NAME = f"moonflower-history-{os.getuid()}.json"
"""The databases' recent backups, apart: a run reads and rewrites the state file three
times, once before pg_dump starts, and 30 backups of each of 200 databases are 1.5 MB."""
_update_lock = threading.Lock()
HISTORY_LENGTH = 30
"""Backups remembered per database: the status page charts them."""


class StateFile:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_NAME
        self.history_path = directory / HISTORY_NAME

    def read(self) -> dict[str, Any] | None:
        state = read_json(self.path)
        if state is not None and (problems := state_problems(state)):
            set_aside(self.path, problems)
            return None
        return state

    def shown(self) -> dict[str, Any] | None:
        """The state with each replica's last store (`destinations`), for `health`,
        `status`, the metrics and the page."""
        state = self.read()
        stores = last_stores(self.path.parent)
        if not stores:
            return state
        return {**(state or {}), "destinations": stores}

    def history(self) -> dict[str, list[dict[str, Any]]]:
        """Each database's recent backups, oldest first."""
        history = read_json(self.history_path) or {}
        if problems := history_problems(history):
            set_aside(self.history_path, problems)
            return {}
        return history

    def _update(self, **changes: Any) -> None:
        with _update_lock:  # the WAL stream's thread writes beside the scheduler
            self._write(changes)

    def _write(self, changes: dict[str, Any]) -> None:
        state = self.read() or {}
        state.update(changes)
        advisory_write(self.path, state)

    def scheduler_started(self, expression: str) -> None:
        self._update(
            scheduler={"pid": os.getpid(), "started": now(), "schedule": expression},
            next_run=None,
        )

    def scheduler_stopped(self) -> None:
        self._update(scheduler=None, next_run=None, scheduler_stopped=now())

    def next_run(self, moment: datetime) -> None:
        self._update(next_run=pendulum.instance(moment).in_timezone("UTC").isoformat())

    def wal_stream(self, summary: dict[str, Any] | None) -> None:
        self._update(wal_stream=summary)

    def run_started(self, started: str) -> None:
        self._update(current_run={"started": started, "pid": os.getpid()})

    def backups_recorded(self, backups: list[dict[str, Any]], counts: dict[str, int]) -> None:
        """Each database's latest attempt and its short history (for the metrics and the
        status page), and the running totals of what was counted."""
        with _update_lock:
            state = self.read() or {}
            databases: dict[str, Any] = state.get("databases") or {}
            histories = self.history()
            for name, earlier in databases.items():  # kept in this file by earlier versions
                moved = earlier.pop("history", None)
                if moved:
                    histories.setdefault(name, moved)
            for backup in backups:
                record = databases.setdefault(backup["database"], {})
                history = histories.setdefault(backup["database"], [])
                record["last_attempt"] = backup["time"]
                record["last_ok"] = backup["ok"]
                record["size_drop"] = backup.get("size_drop")
                if backup["ok"]:
                    record.update(
                        last_success=backup["time"],
                        last_size=backup["size"],
                        last_seconds=backup["seconds"],
                    )
                history.append(backup)
                del history[:-HISTORY_LENGTH]
            totals: dict[str, int] = state.get("counters") or {}
            for name, amount in counts.items():
                totals[name] = totals.get(name, 0) + amount
            advisory_write(self.history_path, histories)
            self._write({"databases": databases, "counters": totals})

    def job_started(self, kind: str, schedule: str | None) -> None:
        """A job beside the logical backups (`basebackup`) is scheduled by this process."""
        with _update_lock:
            state = self.read() or {}
            jobs = valid_dict(state.get("jobs"))
            record = valid_dict(jobs.get(kind))
            record.update(pid=os.getpid(), schedule=schedule, started=now())
            jobs[kind] = record
            self._write({"jobs": jobs})

    def job_finished(self, kind: str, ok: bool, error: str | None = None) -> None:
        """The outcome of a job: `health` is unhealthy while its last attempt failed."""
        with _update_lock:
            state = self.read() or {}
            jobs = valid_dict(state.get("jobs"))
            record = valid_dict(jobs.get(kind))
            moment = now()
            record.update(last_attempt=moment, last_ok=ok, last_error=error)
            if ok:
                record["last_success"] = moment
            jobs[kind] = record
            self._write({"jobs": jobs})

    def run_finished(self, started: str, status: int) -> None:
        self._update(
            last_run={"started": started, "finished": now(), "status": status}, current_run=None
        )


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def set_aside(path: Path, problems: list[str]) -> None:
    """A damaged file is kept for a look (`<name>.damaged`) and Moonflower starts anew."""
    aside = path.with_name(path.name + ".damaged")
    with contextlib.suppress(OSError):
        os.replace(path, aside)
    log.warning(
        "BACKUP_STATE_DIR: %s was damaged (%s); set aside as %s, starting anew",
        path,
        "; ".join(problems),
        aside.name,
    )


def advisory_write(path: Path, content: dict[str, Any]) -> None:
    """The status file informs `health`, `status` and the metrics; it never decides a
    backup, so a state directory that cannot take it (full, read-only) is only logged."""
    try:
        write_json(path, content)
    except OSError as error:
        log.warning(
            "BACKUP_STATE_DIR: cannot write %s (%s); the backup goes on without it",
            path,
            error.strerror or error,
        )


def valid_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def now() -> str:
    return pendulum.now("UTC").isoformat()
