"""The upload journal: keys being uploaded, with the run uploading them, kept in the state
directory, so a run killed by SIGKILL (or a power cut) leaves a note of its unfinished
multipart uploads, and a later start aborts them. A run is live while it holds its lock in
the same directory (`runtime.ownership`)."""

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moonflower.core.logs import log
from moonflower.core.ownership import lease, owner_is_live, remove_dead_locks

JOURNAL_NAME = "moonflower-uploads.journal"


def readable_entries(text: str) -> list[dict[str, Any]]:
    """The journal's entries; a line torn by a crash (or a full disk) is skipped, not fatal."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            entries.append(entry)
    return entries


class UploadJournal:
    """Keys being uploaded, with their run, so a killed run's uploads can be aborted."""

    def __init__(self, directory: Path, bucket: str, endpoint: str) -> None:
        self.path = directory / JOURNAL_NAME
        self.bucket = bucket
        self.endpoint = endpoint

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        # O_NOFOLLOW: a symlink planted under our name is refused, never followed.
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            entries = readable_entries(handle.read())
            yield entries
            handle.seek(0)
            handle.truncate()
            handle.writelines(json.dumps(entry) + "\n" for entry in entries)
            if not entries:
                self.path.unlink(missing_ok=True)  # nothing in flight: leave no file behind

    def _matches(self, entry: dict[str, Any]) -> bool:
        return entry.get("bucket") == self.bucket and entry.get("endpoint") == self.endpoint

    def started(self, key: str) -> None:
        try:
            lease.claim(self.path.parent)
            with self._locked() as entries:
                entry = {"key": key, "bucket": self.bucket, "endpoint": self.endpoint}
                entries.append({**entry, "run": lease.token})
        except OSError as error:
            self._unwritable(error)

    def finished(self, key: str) -> None:
        try:
            with self._locked() as entries:
                entries[:] = [e for e in entries if not (self._matches(e) and e["key"] == key)]
        except OSError as error:
            self._unwritable(error)

    def _unwritable(self, error: OSError) -> None:
        """The journal only lets a later start abort a killed run's multipart upload: a
        state directory that cannot take it never stops the backup."""
        log.warning(
            "BACKUP_STATE_DIR: cannot write %s (%s); a multipart upload this run leaves if "
            "it is killed will not be aborted by the next start",
            self.path,
            error.strerror or error,
        )

    def stale_keys(self) -> list[str]:
        remove_dead_locks(self.path.parent)  # a killed run's entries stay: it is still dead
        try:
            with self._locked() as entries:
                return [
                    entry["key"]
                    for entry in entries
                    if self._matches(entry) and not owner_is_live(self.path.parent, _owner(entry))
                ]
        except OSError as error:
            self._unwritable(error)
            return []


def _owner(entry: dict[str, Any]) -> str:
    """The run of an entry; entries written before locks name their process id."""
    return str(entry.get("run") or entry.get("pid") or "0")
