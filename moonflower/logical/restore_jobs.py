"""How many jobs pg_restore runs for a custom-format backup."""

import os

MAX_RESTORE_JOBS = 8


def default_restore_jobs() -> int:
    """One per core, at most MAX_RESTORE_JOBS: loading is CPU work for the server too."""
    return max(1, min(MAX_RESTORE_JOBS, os.cpu_count() or 1))
