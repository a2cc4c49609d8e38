"""One dump's pipeline: `pg_dump | dd | compressor | gpg > spool file`, run and checked.

`dd` passes the SQL through unchanged and reports how much there was, so a dump that
exits 0 having written nothing is caught. A spool directory that fills up is named as the
cause instead of the stage that could no longer write.
"""

import contextlib
import os
import re
import resource
import signal
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from moonflower.catalog.keys import GLOBALS_NAME
from moonflower.core.errors import DumpError, StageFailed, TimedOut
from moonflower.core.logs import log
from moonflower.logical.plans import DumpPlan
from moonflower.postgres.clients import ClientTool
from moonflower.proc import runner
from moonflower.proc.codec import compress_stage
from moonflower.proc.gpg import Encryption
from moonflower.proc.runner import Stage

COUNTING_STAGE = Stage("dd", ["dd", "bs=1M"], {"LC_ALL": "C"})
DD_BYTES = re.compile(r"^(\d+) bytes")
LOW_SPACE_BYTES = 16 * 1024 * 1024
LOCK_TIMED_OUT = re.compile(r"statement timeout.*LOCK TABLE|could not obtain lock", re.DOTALL)
"""How pg_dump reports --lock-wait-timeout running out (PostgreSQL 18 and older)."""


@dataclass(frozen=True)
class DumpJob:
    """Everything one dump needs: what to run, with which program, connected how, into
    which spool file, encrypted or not."""

    plan: DumpPlan
    tool: ClientTool
    environment: dict[str, str]
    spool: Path
    encryption: Encryption | None
    time_limit: float | None = None
    """Seconds the whole pipeline may run (BACKUP_TIMEOUT)."""
    cancel: runner.Cancel | None = None
    """Stops the dump when it returns an exception (S3 turned out to be unusable)."""

    def run_with_fallback(self) -> int | None:
        """Dump into the spool file; for the globals, retry without role passwords when the
        user may not read them (managed services). How many bytes of SQL, when known."""
        try:
            return self.run()
        except StageFailed as error:
            if self.plan.key_name != GLOBALS_NAME or "permission denied" not in error.stderr_tail:
                raise
        log.warning(
            "not allowed to read role passwords (a managed PostgreSQL?): backing up the "
            "globals with --no-role-passwords; restored roles will need new passwords"
        )
        arguments = (*self.plan.arguments, "--no-role-passwords")
        return replace(self, plan=replace(self.plan, arguments=arguments)).run()

    def run(self) -> int | None:
        """Run the pipeline into the spool file; return how many bytes pg_dump wrote."""
        plan, spool = self.plan, self.spool
        stages = [Stage(plan.program, [str(self.tool.path), *plan.arguments], self.environment)]
        stages.append(COUNTING_STAGE)
        compress = compress_stage(plan.compression) if plan.compression is not None else None
        if compress is not None:
            stages.append(compress)
        try:
            with contextlib.ExitStack() as stack:
                if self.encryption is not None:
                    stages.append(stack.enter_context(self.encryption.stage()))
                output = stack.enter_context(spool.open("wb"))
                tails = runner.run(
                    stages, output=output, time_limit=self.time_limit, cancel=self.cancel
                )
        except OSError as error:
            raise spool_error(spool.parent, str(error.strerror or error)) from None
        except TimedOut as error:
            raise DumpError(f"{error} (BACKUP_TIMEOUT)") from None
        except StageFailed as error:
            if error.stage == stages[-1].name and spool_looks_full(error, spool):
                raise spool_error(spool.parent, str(error)) from None
            if error.stage == plan.program and LOCK_TIMED_OUT.search(error.stderr_tail):
                raise DumpError(
                    f"{plan.program} could not lock a table within PG_LOCK_WAIT_TIMEOUT (another "
                    f"session holds a conflicting lock): {error.stderr_tail}"
                ) from None
            raise
        written = counted_bytes(tails[1].lines)
        if written == 0:
            raise DumpError(f"{plan.program} wrote nothing, though it exited with status 0")
        return written


def spool_error(directory: Path, detail: str) -> DumpError:
    return DumpError(
        f"cannot write the dump to the spool directory {directory} (full, or a file size "
        f"limit?): {detail}"
    )


def counted_bytes(dd_stderr: Iterable[str]) -> int | None:
    """The byte count dd reports when it ends ("123 bytes (123 B) copied, ...")."""
    for line in dd_stderr:
        match = DD_BYTES.match(line)
        if match:
            return int(match.group(1))
    return None


def spool_looks_full(error: StageFailed, spool: Path) -> bool:
    """Did the stage writing the spool file fail because the file could not grow? (Each
    writer says so its own way: SIGXFSZ, ENOSPC's text, or igzip's "Error ... writing".)"""
    if error.exit_code == -signal.SIGXFSZ:
        return True
    if any(text in error.stderr_tail for text in ("No space left", "File too large")):
        return True
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    with contextlib.suppress(OSError):
        if limit != resource.RLIM_INFINITY and spool.stat().st_size >= limit:
            return True
    usage = os.statvfs(spool.parent)
    return usage.f_bavail * usage.f_frsize < LOW_SPACE_BYTES
