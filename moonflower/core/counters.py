"""Events counted while a run goes on (S3 retries), read once at its end for the metrics."""

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def count(name: str, amount: int = 1) -> None:
    with _lock:
        _counts[name] += amount


def taken() -> dict[str, int]:
    """The counts since the last call, which starts them again from zero."""
    with _lock:
        counts = dict(_counts)
        _counts.clear()
        return counts
