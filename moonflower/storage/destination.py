"""A Destination: the bucket and prefix backups go to, built once from the configuration and
handed to every job. It is the only place S3 access is constructed; the gateway (and with
it boto3) loads on first use, so a command that never touches S3 never pays for it."""

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from moonflower.config.model import S3Config
from moonflower.storage.opening import OpeningStorage

if TYPE_CHECKING:
    from moonflower.storage.gateway import Storage


class Destination:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._storage: Storage | None = None
        self._checked = False
        self._lock = threading.Lock()

    @property
    def prefix(self) -> str:
        return self.config.prefix

    def storage(self) -> "Storage":
        """The gateway, made on first use (the bucket not yet checked)."""
        with self._lock:
            if self._storage is None:
                from moonflower.storage.gateway import Storage

                self._storage = Storage(self.config)
            return self._storage

    def checked(self) -> "Storage":
        """The gateway, its bucket checked once (fails early when it cannot be used)."""
        storage = self.storage()
        with self._lock:
            if not self._checked:
                storage.check_bucket()
                self._checked = True
        return storage

    def opening(self, prepare: Callable[["Storage"], None]) -> OpeningStorage:
        """The gateway made ready in a thread of its own while the first dump starts."""
        return OpeningStorage(self.checked, prepare)
