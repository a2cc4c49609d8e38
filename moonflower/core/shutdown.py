"""Signals: SIGTERM and SIGINT stop an idle process at once and abandon a run in progress."""

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from moonflower.core.errors import Terminated


class Shutdown:
    """Turns SIGTERM/SIGINT into a stop request, and into an exception while work runs."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._interrupt_work = False
        self._deferring = False
        self._pending: int | None = None
        self.abandoned = threading.Event()
        """Set when a run is given up: work in other threads checks it and stops."""
        self.received: int | None = None
        """The last stop signal received."""

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum
        self.requested.set()
        if self._interrupt_work:
            # Only once: a second signal must not break the clean-up the first one started.
            self._interrupt_work = False
            if self._deferring:
                self._pending = signum
                return
            raise_for(signum)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """Hold an interrupting signal until the block ends (e.g. while starting processes,
        so none is started without being tracked). Only the main thread, where signal
        handlers run, needs this; elsewhere it does nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            pending, self._pending = self._pending, None
            if pending is not None:
                raise_for(pending)

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """While inside, a signal raises Terminated (SIGTERM) or KeyboardInterrupt (SIGINT)."""
        self._interrupt_work = True
        try:
            yield
        finally:
            self._interrupt_work = False


def raise_for(signum: int) -> None:
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


shutdown = Shutdown()
"""The process-wide instance: signal handlers are process-wide too."""


leftover_threads = threading.Event()
"""Set when threads that may never end were left behind (a notification past its deadline):
the process then exits without waiting for threads, instead of hanging at exit."""
