"""What is stored on the primary, stored on every replica too: the same file, so the same
bytes and the same SHA-256. A required replica's failure fails the store once every replica
was tried; an optional one's is a warning. The copies stored stay either way, and each
destination's outcome is recorded for `health`, the metrics and the page."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moonflower.core.errors import ConfigError, MoonflowerError, StorageError
from moonflower.core.logs import log
from moonflower.storage.destination import Destination
from moonflower.storage.journal import UploadJournal
from moonflower.storage.store_record import last_stores, record_store
from moonflower.storage.transaction import upload_transaction


class ReplicaFailed(StorageError):
    """A required replica did not take what the primary holds."""


@dataclass
class Replicated:
    stored: list[str] = field(default_factory=list)
    """The replicas that took it, by name."""
    warnings: list[str] = field(default_factory=list)
    """The optional replicas' failures."""
    failures: list[str] = field(default_factory=list)
    """The required replicas' failures."""

    def then(self, following: "Replicated") -> "Replicated":
        """This store followed by another on the replicas that took this one."""
        return Replicated(
            following.stored,
            self.warnings + following.warnings,
            self.failures + following.failures,
        )

    def check(self) -> None:
        if self.failures:
            raise ReplicaFailed("; ".join(self.failures))


def store_on_replicas(
    replicas: Sequence[Destination],
    what: str,
    store: Callable[[Destination], object],
    state_dir: Path,
) -> Replicated:
    """`store` run for each replica, whatever the others did. A failure
    repeating the last one recorded (a replica down while the WAL stream pushes every few
    seconds) is logged at debug level only."""
    replicated = Replicated()
    for replica in replicas:
        try:
            store(replica)
        except ConfigError:
            raise
        except MoonflowerError as error:
            problem = f"{what} not stored on the replica {replica.name}: {error}"
            before = last_stores(state_dir).get(replica.name, {})
            repeated = before.get("ok") is False and before.get("error") == str(error)
            record_store(state_dir, replica.name, replica.optional, what, str(error))
            level = log.debug if repeated else log.warning if replica.optional else log.error
            level("%s%s", problem, " (optional: going on)" if replica.optional else "")
            (replicated.warnings if replica.optional else replicated.failures).append(problem)
            continue
        record_store(state_dir, replica.name, replica.optional, what)
        replicated.stored.append(replica.name)
        log.info("%s stored on %s too", what, replica.name)
    return replicated


def store_file(
    state_dir: Path, destination: Destination, key: str, path: Path, content_type: str
) -> str:
    """`path` stored create-only as `key` on `destination`, in an upload transaction of its
    own; the key stored."""
    journal = UploadJournal(state_dir, destination.config.bucket, destination.config.endpoint)
    with upload_transaction(
        journal, destination.checked, key, path, content_type, 0, stream_parts=False
    ) as upload:
        return upload.upload().key
