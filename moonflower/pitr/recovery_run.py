"""Running the recovery of a restored data directory with the matching `postgres`, as the
user who will own the server (PostgreSQL refuses root), then stopping it cleanly.

The server listens on no TCP address (only a private Unix socket), so it cannot clash with
a server already running from the same configuration, and `hot_standby` is off so that
`pg_ctl start --wait` returns only once recovery has ended and the server is promoted.
"""

import contextlib
import grp
import os
import pwd
import random
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from moonflower.core.errors import MoonflowerError, RestoreError, StageFailed
from moonflower.core.logs import log, step
from moonflower.pitr.recovery_settings import trial_options
from moonflower.postgres.clients import exact_client
from moonflower.proc.runner import Stage, capture

RECOVERY_WAIT_SECONDS = 24 * 3600
LAST_TRANSACTION = re.compile(r"last completed transaction was at log time (.+)$", re.MULTILINE)
REDO_DONE = re.compile(r"redo done at ([0-9A-F]+/[0-9A-F]+)", re.MULTILINE)
STOPPING = re.compile(r"recovery stopping (?:before|after) .*$", re.MULTILINE)
NEW_TIMELINE = re.compile(r"selected new timeline ID: (\d+)", re.MULTILINE)
LOG_TAIL_LINES = 8
CLUSTER_STATE = re.compile(r"^Database cluster state:\s*(.+)$", re.MULTILINE)
IN_PRODUCTION = "in production"
SHUT_DOWN = "shut down"
STATE_POLL_SECONDS = 0.2
SYNCFS_SINCE = 14
"""recovery_init_sync_method appeared in PostgreSQL 14."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Reached:
    last_transaction: str | None
    redo_lsn: str | None
    timeline: int | None
    stop_reason: str | None

    @property
    def shown(self) -> str:
        """`last transaction at T, redo done at LSN`, for the log."""
        last = self.last_transaction or "(none replayed)"
        return f"last transaction at {last}, redo done at {self.redo_lsn or '?'}"


def server_account(directory: Path, run_as: str | None, required: bool) -> Account | None:
    """Whom the server runs as: None when Moonflower is not root (it runs as itself), or,
    unless `required` (the server is started here), when nobody but root is named."""
    if os.geteuid() != 0:
        if run_as is not None:
            raise RestoreError("prepare", "--run-as needs root (Moonflower runs as one user)")
        return None
    if run_as is not None:
        try:
            entry = pwd.getpwnam(run_as)
        except KeyError:
            raise RestoreError("prepare", f"--run-as {run_as}: no such user") from None
    else:
        owner = directory.stat().st_uid if directory.exists() else 0
        if owner == 0 and not required:
            log.warning(
                "the restored directory stays root's: chown it to the server's user before "
                "starting (or pass --run-as USER)"
            )
            return None
        if owner == 0:
            raise RestoreError(
                "prepare",
                "PostgreSQL refuses to run as root: give the directory to the user the server "
                "runs as (chown), or name one with --run-as USER",
            )
        entry = pwd.getpwuid(owner)
    if entry.pw_uid == 0:
        raise RestoreError("prepare", "PostgreSQL refuses to run as root; name another user")
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


PRIVATE_IDS = range(61184, 65520)
"""Where a trial recovery's user id is drawn from, as root: the range systemd gives its
dynamic users, which no account of the host's own has."""


def private_account() -> Account:
    """A user id of its own for a trial recovery: no account, group or running process has
    it, so no other process on the host can read the cluster copy or signal its server."""
    taken = running_ids()
    candidates = list(PRIVATE_IDS)
    random.shuffle(candidates)
    for number in candidates:
        if number in taken or has_account(number):
            continue
        return Account(f"uid {number}", number, number)
    raise RestoreError("prepare", "no free user id for the trial recovery")


def has_account(number: int) -> bool:
    try:
        pwd.getpwuid(number)
    except KeyError:
        try:
            grp.getgrgid(number)
        except KeyError:
            return False
    return True


def running_ids() -> set[int]:
    """Every real, effective and saved user id of the processes running now."""
    found: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(("Uid:", "Gid:")):
                found.update(int(value) for value in line.split()[1:])
    return found


def as_account(account: Account | None, argv: list[str]) -> list[str]:
    if account is None:
        return argv
    switch = ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups"]
    return [*switch, "--", *argv]


@contextlib.contextmanager
def private_directory(account: Account | None) -> Iterator[Path]:
    """A directory for the server's socket and log, owned by its user, in the system's
    temporary directory (the spool may be closed to that user; socket paths must be short)."""
    path = Path(tempfile.mkdtemp(prefix="moonflower-recovery-"))
    try:
        if account is not None:
            os.chown(path, account.uid, account.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


SOCKET_PATH_LIMIT = 107
"""sun_path holds 108 bytes with its terminating NUL."""
SOCKET_FILE = ".s.PGSQL.5432"
RECOVERY_LOG = "moonflower-recovery.log"


def socket_fits(directory: Path) -> bool:
    """Can a server keep its Unix socket in `directory` (the path's length allows it)?"""
    return len(str(directory / SOCKET_FILE).encode()) <= SOCKET_PATH_LIMIT


@contextlib.contextmanager
def server_places(directory: Path, account: Account | None) -> Iterator[tuple[Path, Path]]:
    """Where the recovering server puts its socket and its log: in the data directory
    itself, so that nothing outside it (no system temp directory) is needed; the log is
    removed after. Only a path too long for a socket falls back to a private temp directory."""
    if not socket_fits(directory):
        with private_directory(account) as private:
            yield private, private / "server.log"
        return
    server_log = directory / RECOVERY_LOG
    try:
        yield directory, server_log
    finally:
        server_log.unlink(missing_ok=True)


def run_recovery(
    directory: Path, major: int, configured: Path | None, account: Account | None
) -> Reached:
    pg_ctl = str(exact_client("pg_ctl", major, configured).path)
    with server_places(directory, account) as (sockets, server_log):
        where = shlex.quote(f"unix_socket_directories={sockets}")
        options = f"-c listen_addresses= -c {where} -c hot_standby=off {trial_options()}"
        if major >= SYNCFS_SINCE:  # one syncfs(2) instead of an fsync of every file
            options += " -c recovery_init_sync_method=syncfs"
        start = [pg_ctl, "start", "-D", str(directory), "-w", "-t", str(RECOVERY_WAIT_SECONDS)]
        start += ["-l", str(server_log), "-o", options]
        try:
            with step("recover"):
                capture(Stage("pg_ctl start", as_account(account, start)))
                wait_for_production(directory, major, configured, account, server_log)
        except StageFailed as error:
            tail = log_tail(server_log)
            raise RestoreError("recover", f"{error}; the server log ends: {tail}") from None
        finally:
            stop = [pg_ctl, "stop", "-D", str(directory), "-m", "fast", "-w"]
            with contextlib.suppress(MoonflowerError):
                capture(Stage("pg_ctl stop", as_account(account, stop)))
        text = server_log.read_text(errors="replace") if server_log.exists() else ""
    state = cluster_state(directory, major, configured, account)
    if state != SHUT_DOWN:
        raise RestoreError("recover", f"the server did not stop cleanly (cluster state: {state})")
    return reached(text)


def cluster_state(
    directory: Path, major: int, configured: Path | None, account: Account | None
) -> str:
    """ "in production", "in archive recovery", "shut down", ... from pg_controldata."""
    tool = str(exact_client("pg_controldata", major, configured).path)
    output = capture(Stage("pg_controldata", as_account(account, [tool, "-D", str(directory)])))
    found = CLUSTER_STATE.search(output)
    return found.group(1).strip() if found else "unknown"


def wait_for_production(
    directory: Path, major: int, configured: Path | None, account: Account | None, server_log: Path
) -> None:
    """`pg_ctl start --wait` may return while the promotion still runs: wait until the
    control file says the cluster is in production (a stop before that would leave a
    directory that replays every WAL record it holds at its next start, past the target)."""
    deadline = time.monotonic() + RECOVERY_WAIT_SECONDS
    while cluster_state(directory, major, configured, account) != IN_PRODUCTION:
        if not (directory / "postmaster.pid").exists():
            raise RestoreError("recover", f"the server stopped: {log_tail(server_log)}")
        if time.monotonic() > deadline:
            raise RestoreError("recover", "recovery did not finish in time")
        time.sleep(STATE_POLL_SECONDS)


def log_tail(path: Path) -> str:
    if not path.exists():
        return "(no log)"
    lines = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-LOG_TAIL_LINES:])


def reached(server_log: str) -> Reached:
    def last(pattern: re.Pattern[str]) -> str | None:
        found = pattern.findall(server_log)
        return found[-1].strip() if found else None

    timeline = last(NEW_TIMELINE)
    stopping = STOPPING.findall(server_log)
    outcome = Reached(
        last_transaction=last(LAST_TRANSACTION),
        redo_lsn=last(REDO_DONE),
        timeline=int(timeline) if timeline else None,
        stop_reason=stopping[-1].strip() if stopping else None,
    )
    log.debug("recovery log: %s", outcome)
    return outcome
