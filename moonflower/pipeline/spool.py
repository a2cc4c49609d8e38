"""What a killed Moonflower leaves behind, and how the next start cleans it up.

SIGTERM and SIGINT are cleaned up on the spot. SIGKILL (or a power cut) leaves spool files,
password files, GnuPG homes and multipart uploads. Every such file is named with the pid of
the process that made it, and every key being uploaded is written to a small journal in the
spool directory, so a later start can tell what is stale (its process is gone) and remove it.
"""

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moonflower.errors import StageFailed
from moonflower.output.logs import log
from moonflower.pipeline.runner import Stage, capture

OWNED_PREFIX = "moonflower-"
JOURNAL_NAME = "moonflower-uploads.journal"
AGENT_STOP_SECONDS = 10
GPGCONF_PROGRAM = "gpgconf"


def owned_prefix(kind: str = "") -> str:
    """The name prefix of files this process owns, e.g. `moonflower-1234-`."""
    return f"{OWNED_PREFIX}{kind}{os.getpid()}-"


def is_alive(pid: int) -> bool:
    """True when `pid` runs and is a Moonflower (guards against reused pids)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"moonflower" in cmdline


def owner_pid(name: str, kind: str = "") -> int | None:
    rest = name.removeprefix(OWNED_PREFIX + kind)
    if rest == name:
        return None
    number = rest.split("-", 1)[0]
    return int(number) if number.isdigit() else None


def remove_stale_files(directory: Path, kind: str = "") -> list[Path]:
    """Remove `moonflower-[kind]<pid>-*` entries of processes that are gone."""
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        pid = owner_pid(entry.name, kind)
        if pid is None or pid == os.getpid() or is_alive(pid):
            continue
        if entry.is_dir() and not entry.is_symlink():
            stop_gpg_agent(entry)
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    for entry in removed:
        log.warning("removed %s, left behind by a Moonflower process that was killed", entry)
    return removed


def stop_gpg_agent(home: Path) -> None:
    """Stop any gpg-agent (and other daemons) started for this GnuPG home."""
    if shutil.which(GPGCONF_PROGRAM) is None:
        return
    argv = [GPGCONF_PROGRAM, "--homedir", str(home), "--kill", "all"]
    with contextlib.suppress(StageFailed):
        capture(Stage("gpgconf", argv), timeout=AGENT_STOP_SECONDS)


class UploadJournal:
    """Keys being uploaded, with their process, so a killed run's uploads can be aborted."""

    def __init__(self, directory: Path, bucket: str, endpoint: str) -> None:
        self.path = directory / JOURNAL_NAME
        self.bucket = bucket
        self.endpoint = endpoint

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        with open(self.path, "a+", encoding="utf-8") as handle:
            os.chmod(self.path, 0o600)
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            entries = [json.loads(line) for line in handle.read().splitlines() if line.strip()]
            yield entries
            handle.seek(0)
            handle.truncate()
            handle.writelines(json.dumps(entry) + "\n" for entry in entries)
            if not entries:
                self.path.unlink(missing_ok=True)  # nothing in flight: leave no file behind

    def _matches(self, entry: dict[str, Any]) -> bool:
        return entry.get("bucket") == self.bucket and entry.get("endpoint") == self.endpoint

    def started(self, key: str) -> None:
        with self._locked() as entries:
            entries.append(
                {"key": key, "bucket": self.bucket, "endpoint": self.endpoint, "pid": os.getpid()}
            )

    def finished(self, key: str) -> None:
        with self._locked() as entries:
            entries[:] = [e for e in entries if not (self._matches(e) and e["key"] == key)]

    def stale_keys(self) -> list[str]:
        with self._locked() as entries:
            return [
                entry["key"]
                for entry in entries
                if self._matches(entry) and not is_alive(int(entry.get("pid", 0)))
            ]
