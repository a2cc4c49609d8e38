"""A Destination: the bucket and prefix backups go to, built once from the configuration and
handed to every job. It is the only place S3 access is constructed; the gateway (and with
it boto3) loads on first use, so a command that never touches S3 never pays for it."""

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from moonflower.config.model import Config, S3Config
from moonflower.config.replicas import PRIMARY
from moonflower.core.errors import ConfigError, MoonflowerError, RestoreError, StorageError
from moonflower.core.logs import log
from moonflower.storage.opening import OpeningStorage

if TYPE_CHECKING:
    from moonflower.storage.gateway import Storage


Result = TypeVar("Result")


class Destination:
    def __init__(self, config: S3Config, name: str = PRIMARY, optional: bool = False) -> None:
        self.config = config
        self.name = name
        """`primary`, or the replica's name."""
        self.optional = optional
        """A replica whose failures are reported without failing the run."""
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


def destinations_of(config: Config) -> list[Destination]:
    """The primary, then the replicas in the order restores try them."""
    replicas = [Destination(r.s3, r.name, r.optional) for r in config.replicas]
    return [Destination(config.s3), *replicas]


def chosen(destinations: list[Destination], name: str | None) -> list[Destination]:
    """Those a read may use, in order: every one, or only the one `--from` names."""
    if name is None:
        return destinations
    picked = [destination for destination in destinations if destination.name == name.lower()]
    if not picked:
        names = ", ".join(destination.name for destination in destinations)
        raise ConfigError([f'--from: "{name}" is not a destination; one of: {names}'])
    return picked


FALLBACK_STEPS = ("find", "choose", "download", "checksum")
"""The steps of a restore whose failure leaves nothing behind: the next destination may
serve instead."""


def falls_back(error: MoonflowerError) -> bool:
    """May the next destination serve where this one failed? Only when nothing was loaded:
    the destination could not be reached, lacks the backup, or its copy fails a check."""
    if isinstance(error, RestoreError):
        return error.step in FALLBACK_STEPS
    return isinstance(error, StorageError)


def with_fallback(
    candidates: list[Destination],
    attempt: Callable[[Destination], Result],
    what: str,
    may_fall_back: Callable[[MoonflowerError], bool] = falls_back,
) -> Result:
    """`attempt` on each candidate in turn until one succeeds; the next is tried only when
    `may_fall_back` allows it, each fallback logged with its reason. The last candidate's
    error is the one raised."""
    for place, destination in enumerate(candidates, start=1):
        try:
            return attempt(destination)
        except MoonflowerError as error:
            if place == len(candidates) or not may_fall_back(error):
                raise
            log.warning(
                "%s from %s failed (%s); trying %s",
                what,
                destination.name,
                error,
                candidates[place].name,
            )
    raise ConfigError(["no destination to use"])
