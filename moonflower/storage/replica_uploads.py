"""The replicas' uploads of a spool file being written: one upload transaction per replica
beside the primary's, whose parts follow the file as the primary's do, so a backup to two
destinations takes little longer than to one. A replica's trouble never reaches the
producer or the primary: it is kept, and reported when the replicas' uploads are settled
(`upload`), where a replica whose early upload failed gets the finished file whole."""

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from moonflower.config.model import ChecksumMode
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.storage.destination import Destination
from moonflower.storage.journal import UploadJournal
from moonflower.storage.replication import Replicated, store_on_replicas
from moonflower.storage.transaction import Transaction, upload_transaction


class ReplicaUploads:
    def __init__(
        self,
        replicas: Sequence[Destination],
        transactions: dict[str, Transaction],
        state_dir: Path,
    ) -> None:
        self.replicas = replicas
        self.transactions = transactions
        self.state_dir = state_dir
        self.keys: dict[str, str] = {}
        """The key stored on each replica that took the file."""
        self.finishing: list[threading.Thread] = []
        """The replicas' early uploads being completed while the primary's is."""

    @contextlib.contextmanager
    def producing(self) -> Iterator[None]:
        """Around the writing of the spool file: each replica's parts go up as they are
        complete; a failure of the block aborts them. Once the file is written, each
        replica's last parts go up in a thread of its own, beside the primary's."""
        with contextlib.ExitStack() as stack:
            for name, transaction in self.transactions.items():
                stack.enter_context(isolated(name, transaction.producing(), self.finishing))
            yield

    def wait(self) -> None:
        for thread in self.finishing:
            thread.join()
        self.finishing.clear()

    def upload(self, what: str) -> Replicated:
        """Each replica's object completed (or the finished file uploaded whole)."""
        self.wait()

        def store(replica: Destination) -> None:
            self.keys[replica.name] = self.transactions[replica.name].upload().key

        return store_on_replicas(self.replicas, what, store, self.state_dir)


@contextlib.contextmanager
def isolated(
    name: str, producing: AbstractContextManager[None], finishing: list[threading.Thread]
) -> Iterator[None]:
    """A replica's early upload: its failure to start or to finish is logged and left to
    `upload`, which uploads the finished file instead; a failure of the producer still
    aborts it (at once, in this thread)."""
    try:
        producing.__enter__()
    except MoonflowerError as error:
        log.debug("the early upload to %s did not start: %s", name, error)
        yield
        return
    try:
        yield
    except BaseException as error:
        producing.__exit__(type(error), error, error.__traceback__)
        raise

    def finish() -> None:
        try:
            producing.__exit__(None, None, None)
        except MoonflowerError as error:
            log.debug("the early upload to %s did not finish: %s", name, error)

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(finish,), name=f"finish-{name}")
    thread.start()
    finishing.append(thread)


@contextlib.contextmanager
def replica_uploads(
    replicas: Sequence[Destination],
    key_of: Callable[[Destination], str],
    spooled: Path,
    content_type: str,
    size_hint: int,
    state_dir: Path,
) -> Iterator[ReplicaUploads]:
    """One transaction per replica: journaled, and settled (nothing unfinished left in the
    replica's bucket) whatever happens."""
    with contextlib.ExitStack() as stack:
        transactions = {}
        for replica in replicas:
            config = replica.config
            journal = UploadJournal(state_dir, config.bucket, config.endpoint)
            transactions[replica.name] = stack.enter_context(
                upload_transaction(
                    journal,
                    replica.checked,
                    key_of(replica),
                    spooled,
                    content_type,
                    size_hint,
                    config.checksum == ChecksumMode.WHEN_SUPPORTED,
                )
            )
        uploads = ReplicaUploads(replicas, transactions, state_dir)
        try:
            yield uploads
        finally:
            uploads.wait()  # before the transactions settle
