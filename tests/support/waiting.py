"""One bounded way to wait for something: tests never sleep and hope."""

import time
from collections.abc import Callable

DEFAULT_BOUND_SECONDS = 60
POLL_SECONDS = 0.05


def eventually(condition: Callable[[], object], seconds: float = DEFAULT_BOUND_SECONDS) -> bool:
    """True as soon as `condition()` is true; False if it is still false after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_SECONDS)
    return bool(condition())
