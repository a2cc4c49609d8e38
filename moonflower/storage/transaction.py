"""The one upload transaction, for every kind of backup.

An object goes up as one transaction: its key is written to the upload journal before the
first byte; while the spool file grows, its complete parts already go up (when S3 checksums
are on: they verify objects made this way); the finished file is uploaded when the early
upload did not finish it; and on any failure no unfinished multipart upload of the key stays
behind. When S3 cannot be asked to abort, the journal keeps the key and a later run cleans up.
"""

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.core.shutdown import shutdown
from moonflower.storage.journal import UploadJournal
from moonflower.storage.objects import MULTIPART_THRESHOLD, Uploaded, part_size_for
from moonflower.storage.streaming import StreamingUpload, streaming_upload

if TYPE_CHECKING:
    from moonflower.storage.gateway import Storage


class Transaction:
    def __init__(
        self,
        storage: Callable[[], "Storage"],
        key: str,
        spooled: Path,
        content_type: str,
        size_hint: int,
        stream_parts: bool,
    ) -> None:
        self.storage = storage
        """S3 once it is open: asked when the first part is ready, not before."""
        self.key = key
        self.spooled = spooled
        self.content_type = content_type
        self.size_hint = size_hint
        self.stream_parts = stream_parts
        self.stream: StreamingUpload | None = None
        self.uploaded: Uploaded | None = None
        self.streamed = False
        self.parts_possible = False
        """Could an unfinished multipart upload of the key exist?"""

    @contextlib.contextmanager
    def producing(self) -> Iterator[None]:
        """Around the writing of the spool file: its parts go up as they are complete. A
        failure of the block aborts the early upload."""
        if not self.stream_parts:
            yield
            return
        part_size = part_size_for(self.size_hint)
        with streaming_upload(
            self.storage, self.key, self.spooled, part_size, self.content_type
        ) as stream:
            self.stream = stream
            yield
            self.uploaded = stream.finish()
            self.streamed = self.uploaded is not None

    def upload(self) -> Uploaded:
        """The stored object: the early upload's, else the finished file uploaded now (in
        parts when large: a failed attempt's parts are looked for when the transaction
        settles, even after a retry succeeded)."""
        if self.uploaded is None:
            self.parts_possible = self.spooled.stat().st_size >= MULTIPART_THRESHOLD
            self.uploaded = self.storage().upload(self.spooled, self.key, self.content_type)
        return self.uploaded

    def settle(self, journal: UploadJournal, unusable: Callable[[], object]) -> None:
        """After success or failure: the journal cleared once no unfinished upload of the key
        can be left."""
        abandoned_stream = self.stream is not None and self.stream.started and not self.streamed
        possible = self.parts_possible or abandoned_stream
        if self.streamed or not possible or unusable() is not None:
            journal.finished(self.key)  # nothing unfinished, or S3 never opened to start one
            return
        try:
            self.storage().abort_uploads_for(self.key)
        except MoonflowerError as error:
            log.warning("could not check for unfinished uploads of %s: %s", self.key, error)
            return
        journal.finished(self.key)


@contextlib.contextmanager
def upload_transaction(
    journal: UploadJournal,
    storage: Callable[[], "Storage"],
    key: str,
    spooled: Path,
    content_type: str,
    size_hint: int,
    stream_parts: bool,
    unusable: Callable[[], object] = lambda: None,
) -> Iterator[Transaction]:
    """`unusable`: why S3 cannot be used, once known (then nothing is left to abort)."""
    with shutdown.critical():  # a signal now must not leave the journal half-kept
        journal.started(key)
    transaction = Transaction(
        storage,
        key,
        spooled,
        content_type,
        size_hint,
        stream_parts,
    )
    try:
        yield transaction
    finally:
        with shutdown.critical():
            transaction.settle(journal, unusable)
