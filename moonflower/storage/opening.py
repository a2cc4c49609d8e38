"""Getting S3 ready in the background while the first dump starts.

Importing boto3 and building its client take about 0.3 s of CPU, and the bucket check is a
network round trip; none of it is needed until the first part of the first dump is ready to
go up. So a run starts its first dump at once and opens S3 beside it: the opening starts when
it is first asked about, which is the first time the dump's pipeline is checked on, just
after pg_dump started (started earlier, its Python work would hold the GIL the start-up
path needs). When S3 turns out to be unusable, the dumps in flight are stopped (see
`failure`) and the run fails with the same message as if it had checked S3 first.
"""

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import step

if TYPE_CHECKING:
    from moonflower.storage.gateway import Storage


class OpeningStorage:
    """A Storage being made ready (client, bucket check, `prepare`) in a thread of its own."""

    def __init__(
        self, open_checked: Callable[[], "Storage"], prepare: Callable[["Storage"], None]
    ) -> None:
        self._open_checked = open_checked
        self._prepare = prepare
        self._storage: Storage | None = None
        self._error: MoonflowerError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._open, name="s3-open", daemon=True)
        self._starting = threading.Lock()

    def _started(self) -> None:
        with self._starting:
            if self._thread.ident is None:
                self._thread.start()

    def _open(self) -> None:
        try:
            with step("s3"):
                storage = self._open_checked()
                self._prepare(storage)
            self._storage = storage
        except MoonflowerError as error:
            self._error = error
        except Exception as error:  # an unexpected failure still reaches the run, named
            self._error = MoonflowerError(f"opening S3 failed: {error}")
        finally:
            self._done.set()

    def get(self) -> "Storage":
        """The ready Storage, waiting for it; raises what made S3 unusable."""
        self._started()
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._storage is not None
        return self._storage

    def error(self) -> MoonflowerError | None:
        """Why S3 is unusable, once known (waits until it is)."""
        self._started()
        self._done.wait()
        return self._error

    def failure(self) -> MoonflowerError | None:
        """Why S3 is unusable, if that is already known; never waits (for polling loops)."""
        self._started()
        return self._error if self._done.is_set() else None
