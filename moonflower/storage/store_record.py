"""Where each destination's last store went: one small file in the state directory, kept
by every process that stores (the run, the WAL stream, `wal-push`), read by `health`, the
metrics and the status page."""

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum

from moonflower.core.logs import log
from moonflower.core.state_dir import write_json

STORES_NAME = f"moonflower-destinations-{os.getuid()}.json"
RECORD_LIMIT = 256 * 1024


def stores_path(state_dir: Path) -> Path:
    return state_dir / STORES_NAME


def last_stores(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Per replica: `ok`, `at` (UTC, ISO 8601), `what`, `error`, `optional` and
    `last_success`; what is not shaped so is left out."""
    try:
        with stores_path(state_dir).open("rb") as handle:
            found = json.loads(handle.read(RECORD_LIMIT) or b"{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        name: record
        for name, record in found.items()
        if isinstance(name, str) and isinstance(record, dict) and isinstance(record.get("ok"), bool)
    }


def record_store(
    state_dir: Path, name: str, optional: bool, what: str, error: str | None = None
) -> None:
    """Advisory like the status file: a state directory that cannot take it is logged."""
    moment = pendulum.now("UTC").isoformat()
    entry = {"ok": error is None, "at": moment, "what": what, "error": error, "optional": optional}
    try:
        with _locked(state_dir):
            records = last_stores(state_dir)
            before = records.get(name, {}).get("last_success")
            records[name] = {**entry, "last_success": before if error else moment}
            write_json(stores_path(state_dir), records)
    except OSError as error_writing:
        log.warning("BACKUP_STATE_DIR: cannot record the store on %s: %s", name, error_writing)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with (state_dir / f".{STORES_NAME}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
