"""The process runner: the only module that starts external processes (python-gnupg, which
runs gpg for key import and inspection, is the one exception).

Stages are joined by OS pipes (`sh` with `_piped`), so the data never passes through Python.
Every stage is waited for and its exit status checked; failures become `StageFailed` errors
that carry the stage name, its exit status and the last lines of its stderr, masked.
"""

import collections
import contextlib
import ctypes
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import sh

from moonflower.core.errors import Abandoned, MoonflowerError, StageFailed, TimedOut
from moonflower.core.logs import log
from moonflower.core.redact import redactor
from moonflower.core.shutdown import shutdown
from moonflower.proc.children import spawning, track, untrack

STDERR_TAIL_LINES = 20
PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a child gets when the thread that started it dies."""
_LIBC = ctypes.CDLL(None, use_errno=True)
"""The C library already loaded into this process: find_library("c") would run ldconfig."""
TICK_SECONDS = 1.0
POLL_SECONDS = 0.05
PIPE_BYTES = 1 << 20
"""Each pipe between stages holds 1 MiB instead of 64 KiB: 300 MiB of SQL then crosses it in
300 writes instead of 5,000, and the stages switch that much less often (on 2 cores a
pipe of `igzip -dc | tail` took 1.0-2.1 s with the default size and 0.6-0.8 s with this).
1 MiB is the default /proc/sys/fs/pipe-max-size, which unprivileged users may ask for."""
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
"""Children get a clean environment: never Moonflower's own, which may hold secrets."""


def die_with_parent() -> None:
    """Runs in each child between fork and exec: when Moonflower dies, even by SIGKILL, the
    kernel sends the child SIGTERM, so a pg_dump does not hold its transaction open (and its
    output has nowhere to go) until it finishes on its own."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(extra or {})
    return env


def widen_pipe(command: Any) -> None:
    """Give the pipe sh made for a stage's output PIPE_BYTES; left as it is where the
    system refuses (a lower pipe-max-size, or the user's pipe quota spent)."""
    descriptor = getattr(command.process, "_pipe_fd", None)
    if descriptor is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(descriptor, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


@dataclass(frozen=True)
class Stage:
    name: str
    argv: Sequence[str]
    """argv[0] is the executable (a path or a name found on PATH)."""
    env: Mapping[str, str] = field(default_factory=dict)
    pass_fds: frozenset[int] = frozenset()
    explain: Callable[[str], MoonflowerError | None] | None = None
    """Turns the stage's stderr into an error that names the step and the setting at fault
    (gpg's "Bad session key": ENCRYPTION_PASSPHRASE does not decrypt this backup)."""

    def failed(self, code: int, stderr_tail: str) -> MoonflowerError:
        explained = self.explain(stderr_tail) if self.explain is not None else None
        return explained or StageFailed(self.name, code, stderr_tail)


Cancel = Callable[[], BaseException | None]
"""Asked while a pipeline runs: an exception means stop the stages and raise it."""


class StderrTail:
    """Keeps the last lines a process wrote to stderr."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    def __call__(self, line: str) -> None:
        stripped = line.rstrip("\n")
        if stripped:
            self.lines.append(stripped)

    def text(self) -> str:
        return redactor.mask(" | ".join(self.lines))

    def last(self) -> str:
        return redactor.mask(self.lines[-1]) if self.lines else ""


class Pipeline:
    """A running `a | b | c > output`; use as a context manager so nothing outlives it."""

    def __init__(
        self,
        stages: Sequence[Stage],
        output: IO[bytes] | None = None,
        source: IO[bytes] | None = None,
    ) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.stages = list(stages)
        self.tails = [StderrTail() for _ in stages]
        self.processes: list[Any] = []
        self._output = output
        self._source = source
        self._running = len(self.stages)
        self._all_ended = threading.Event()
        self._count_lock = threading.Lock()

    def ended(self, seconds: float) -> bool:
        """Wait up to `seconds` for every stage to end; True when they have."""
        return self._all_ended.wait(seconds)

    def _one_ended(self, *_: object) -> None:
        """sh's done callback (from its waiting thread): wakes `wait` as soon as the last
        stage ends, instead of at its next poll."""
        with self._count_lock:
            self._running -= 1
            if self._running <= 0:
                self._all_ended.set()

    def __enter__(self) -> "Pipeline":
        with _active_lock:
            if shutdown.abandoned.is_set():
                raise Abandoned()
            _active.add(self)
        try:
            with shutdown.critical():
                self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.terminate()
        finally:
            untrack([process.pid for process in self.processes])
            with _active_lock:
                _active.discard(self)

    def _start(self) -> None:
        previous: Any = self._source
        last_index = len(self.stages) - 1
        for index, (stage, tail) in enumerate(zip(self.stages, self.tails, strict=True)):
            log.debug("starting %s", stage.name)
            options: dict[str, Any] = {
                "_bg": True,
                "_bg_exc": False,
                "_env": child_environment(stage.env),
                "_err": tail,
                "_decode_errors": "replace",
                "_pass_fds": set(stage.pass_fds),
                "_preexec_fn": die_with_parent,
                "_done": self._one_ended,
            }
            if previous is not None:
                options["_in"] = previous
            if index < last_index:
                options["_piped"] = True
            elif self._output is not None:
                options["_out"] = self._output
            else:
                options["_tty_out"] = False
            try:
                command = sh.Command(stage.argv[0])
            except sh.CommandNotFound:
                raise StageFailed(stage.name, 127, f"{stage.argv[0]}: command not found") from None
            with spawning():
                previous = command(*stage.argv[1:], **options)
                track(previous.pid)
            self.processes.append(previous)
            if index < last_index:
                widen_pipe(previous)
            if shutdown.abandoned.is_set():
                raise Abandoned()

    def wait(
        self,
        on_tick: Callable[[], None] | None = None,
        time_limit: float | None = None,
        cancel: Cancel | None = None,
        last_decides: bool = False,
    ) -> None:
        """Wait for every stage; raise StageFailed for the stage that caused a failure.
        With `last_decides`, the last stage may stop reading early on purpose (`head`): then
        only its own exit status counts.

        `on_tick`, if given, is called about once a second while stages run (progress).
        After `time_limit` seconds the stages are stopped and the first one is named.
        When `cancel` returns an exception, the stages are stopped and it is raised.
        """
        last_tick = 0.0
        deadline = None if time_limit is None else time.monotonic() + time_limit
        # Wait in short slices: a blocked main thread would delay signal handlers, time limits
        # and cancellation; the last stage's end wakes the wait at once.
        while any(process.is_alive() for process in self.processes):
            if on_tick is not None and time.monotonic() - last_tick >= TICK_SECONDS:
                on_tick()
                last_tick = time.monotonic()
            if deadline is not None and time.monotonic() > deadline:
                self.terminate()
                raise TimedOut(self.stages[0].name, time_limit or 0.0)
            reason = cancel() if cancel is not None else None
            if reason is not None:
                self.terminate()
                raise reason
            self._all_ended.wait(POLL_SECONDS)
        codes = [self._exit_code(process) for process in reversed(self.processes)]
        codes.reverse()
        failed = [index for index, code in enumerate(codes) if code != 0]
        if last_decides:
            failed = [index for index in failed if index == len(codes) - 1]
        if not failed:
            return
        root_causes = [index for index in failed if codes[index] != -signal.SIGPIPE] or failed
        index = root_causes[0]
        raise self.stages[index].failed(codes[index], self.tails[index].text())

    @staticmethod
    def _exit_code(process: Any) -> int:
        with contextlib.suppress(sh.ErrorReturnCode):
            process.wait()
        code = process.exit_code
        return int(code) if code is not None else -1

    @property
    def first_pid(self) -> int:
        return int(self.processes[0].pid)

    def signal_stages(self) -> None:
        """Ask every stage still running to stop (safe from any thread)."""
        for process in list(self.processes):
            if process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()

    def terminate(self) -> None:
        """Stop every stage still running, then reap them all."""
        self.signal_stages()
        for process in self.processes:
            try:
                process.wait()
            except sh.ErrorReturnCode:
                pass
            except Exception as error:
                log.debug("while reaping %s: %s", process, error)


_active: set[Pipeline] = set()
_active_lock = threading.Lock()


def abandon_all() -> None:
    """Give up the run: stop the stages of every pipeline, in every thread; start no more."""
    shutdown.abandoned.set()
    with _active_lock:
        pipelines = list(_active)
    for pipeline in pipelines:
        pipeline.signal_stages()


def run(
    stages: Sequence[Stage],
    output: IO[bytes] | None = None,
    source: IO[bytes] | None = None,
    on_tick: Callable[["Pipeline"], None] | None = None,
    time_limit: float | None = None,
    cancel: Cancel | None = None,
    last_decides: bool = False,
) -> list[StderrTail]:
    """Run the stages joined by pipes; return each stage's stderr tail (for summaries)."""
    with Pipeline(stages, output=output, source=source) as pipeline:
        tick = None if on_tick is None else lambda: on_tick(pipeline)
        pipeline.wait(tick, time_limit, cancel, last_decides)
        return pipeline.tails


def capture(stage: Stage, timeout: float | None = None) -> str:
    """Run one short command and return its stdout (decoded, stripped); a command still
    running after `timeout` seconds is killed and fails."""
    tail = StderrTail()
    try:
        with spawning():  # waited for inside: tracked until it returns
            result = sh.Command(stage.argv[0])(
                *stage.argv[1:],
                _env=child_environment(stage.env),
                _err=tail,
                _decode_errors="replace",
                _tty_out=False,
                _return_cmd=True,
                _timeout=timeout,
                _preexec_fn=die_with_parent,
            )
    except sh.TimeoutException as error:
        code = error.exit_code if error.exit_code is not None else -signal.SIGKILL
        raise StageFailed(stage.name, code, f"timed out after {timeout} s") from None
    except sh.ErrorReturnCode as error:
        raise StageFailed(stage.name, error.exit_code, tail.text()) from None
    except sh.CommandNotFound:
        raise StageFailed(stage.name, 127, f"{stage.argv[0]}: command not found") from None
    return str(result).strip()
