"""The process entry point: take Moonflower's settings out of the environment first.

Libraries may start helper processes that inherit `os.environ` (croniter, on import, makes
Python's platform module run `file`). Our own settings, secrets among them, are copied and
then removed from `os.environ` before anything else is imported, so no child can see them.
"""

import atexit
import contextlib
import os
import signal
import sys
import threading

from moonflower.config.settings import KNOWN_NAMES, OWNED_PREFIXES

SIGPIPE_STATUS = 128 + signal.SIGPIPE
NOT_INSTALLED = 2
"""Nothing ran: like a bad configuration, the installation must be fixed first."""


def take_settings() -> dict[str, str]:
    """A copy of the whole environment; Moonflower's own variables leave os.environ, and so
    does anything named like one (a misspelt secret is still a secret)."""
    environment = dict(os.environ)
    for name in [
        name for name in os.environ if name in KNOWN_NAMES or name.startswith(OWNED_PREFIXES)
    ]:
        del os.environ[name]
    return environment


def run() -> None:
    environment = take_settings()
    try:
        from moonflower.cli.main import main
    except ModuleNotFoundError as missing:
        print(
            f"moonflower: the Python package {missing.name!r} is not installed for "
            f"{sys.executable}; run `make venv` in the checkout (bin/moonflower then uses "
            "its .venv), or `pip install .`",
            file=sys.stderr,
        )
        sys.exit(NOT_INSTALLED)
    leave(main(environ=environment))


def leave(status: int) -> None:
    """Exit like the interpreter would, but without its teardown of every module and object
    (with boto3 loaded, 0.05-0.1 CPU-seconds of a run that has nothing left to do). First what
    the interpreter does first: thread pools are told to stop and threads still working are
    waited for; then exit handlers run and output is flushed."""
    from moonflower.core.shutdown import leftover_threads

    wait_for_threads = getattr(threading, "_shutdown", None)  # the interpreter's own step
    if leftover_threads.is_set():
        pass  # some may never end (a receiver that trickles): none is waited for
    elif wait_for_threads is not None:
        wait_for_threads()
    else:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to do
            stream.flush()
    if status == SIGPIPE_STATUS:  # standard output's reader left: end as `cat` would
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(status)
