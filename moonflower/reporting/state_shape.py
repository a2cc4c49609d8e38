"""The shape the status file must have. The file is advisory: one that is damaged (valid
JSON of another shape, a hand edit, another version's) is set aside and started anew, and
never stops a backup or `status`."""

from typing import Any

DICT_ENTRIES = ("scheduler", "current_run", "last_run", "wal_stream", "jobs")
TEXT_ENTRIES = ("next_run", "scheduler_stopped")
JOB_TITLES = {
    "basebackup": "base backup",
    "verify": "verification",
    "prune": "prune",
    "sync": "sync",
}
"""The jobs recorded under "jobs" beside the logical runs, as messages name them."""


def state_problems(state: dict[str, Any]) -> list[str]:
    """What does not have the shape Moonflower writes (empty: the file is sound)."""
    problems = []
    for name in DICT_ENTRIES:
        if state.get(name) is not None and not isinstance(state[name], dict):
            problems.append(f'"{name}" is not an object')
    for name in TEXT_ENTRIES:
        if state.get(name) is not None and not isinstance(state[name], str):
            problems.append(f'"{name}" is not a string')
    databases = state.get("databases")
    if databases is not None and not (
        isinstance(databases, dict) and all(isinstance(v, dict) for v in databases.values())
    ):
        problems.append('"databases" is not an object of objects')
    counters = state.get("counters")
    if counters is not None and not (
        isinstance(counters, dict)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in counters.values())
    ):
        problems.append('"counters" is not an object of whole numbers')
    jobs = state.get("jobs")
    if isinstance(jobs, dict) and not all(isinstance(v, dict) for v in jobs.values()):
        problems.append('"jobs" is not an object of objects')
    return problems


def history_problems(history: dict[str, Any]) -> list[str]:
    if all(
        isinstance(entries, list) and all(isinstance(entry, dict) for entry in entries)
        for entries in history.values()
    ):
        return []
    return ["a database's history is not a list of objects"]
