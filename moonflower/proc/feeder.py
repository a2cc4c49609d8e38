"""Feeding a pipeline from an object as S3 sends it: each chunk goes into the pipeline's
stdin (and, when asked, into a spool file) while its SHA-256 is computed, so the download
and the work on the bytes overlap instead of following each other."""

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import IO, BinaryIO, Protocol

from moonflower.core.errors import MoonflowerError, StorageError
from moonflower.proc import runner
from moonflower.proc.codec import HEAD_BYTES
from moonflower.proc.runner import Stage

CHUNK_BYTES = 1024 * 1024


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class StreamBroken(MoonflowerError):
    """The download stopped before the end of the object: start over from a spool file."""


class Feeder:
    """Writes the object's chunks into the pipeline's stdin and hashes all of them, even
    after the pipeline stopped reading (its failure may be the damage the hash names)."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        head: bytes,
        copy_to: BinaryIO | None = None,
        on_bytes: Callable[[int], None] | None = None,
        digest: Digest | None = None,
    ) -> None:
        self.chunks = chunks
        self.head = head
        self.read_end, self.write_end = os.pipe()
        self.copy_to = copy_to
        """Where every chunk is also written (a spool file), even once the pipeline stopped."""
        self.on_bytes = on_bytes
        self.digest: Digest = hashlib.sha256() if digest is None else digest
        """What every byte is hashed into: the object's SHA-256 unless another is asked for."""
        self.size = 0
        self.error: StorageError | None = None
        self.spool_error: MoonflowerError | None = None
        """Why the copy could not be written (a full spool directory)."""
        self.stop = threading.Event()
        """Set when the restore is abandoned: nothing more is read."""
        self.thread = threading.Thread(target=self._feed, name="s3-stream")

    def feed(
        self,
        stages: AbstractContextManager[list[Stage]],
        last: Stage,
        output: IO[bytes] | None = None,
    ) -> MoonflowerError | None:
        """Run `stages | last` on the object's bytes while they arrive; the pipeline's
        failure is returned, not raised: only the checksum can tell whether it is damage."""
        failure: MoonflowerError | None = None
        try:
            with os.fdopen(self.read_end, "rb") as source, stages as entered:
                self.thread.start()
                try:
                    runner.run([*entered, last], output=output, source=source)
                except MoonflowerError as error:
                    failure = error
        except BaseException:
            self.stop.set()
            raise
        finally:
            if self.thread.ident is None:
                os.close(self.write_end)
            else:
                self.thread.join()
        return failure

    def _feed(self) -> None:
        writing = True
        try:
            for chunk in self._all_chunks():
                if self.stop.is_set():
                    break
                self.digest.update(chunk)
                self.size += len(chunk)
                if self.copy_to is not None and self.spool_error is None:
                    self._copy(chunk)
                if self.on_bytes is not None:
                    self.on_bytes(len(chunk))
                if writing:
                    writing = self._write(chunk)
        except StorageError as error:
            self.error = error
        finally:
            if writing:
                os.close(self.write_end)

    def _copy(self, chunk: bytes) -> None:
        assert self.copy_to is not None
        try:
            self.copy_to.write(chunk)
        except OSError as error:
            self.spool_error = MoonflowerError(f"cannot write the spool file: {error.strerror}")

    def _all_chunks(self) -> Iterator[bytes]:
        yield self.head
        yield from self.chunks

    def _write(self, chunk: bytes) -> bool:
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self.write_end, view) :]
        except BrokenPipeError:
            os.close(self.write_end)
            return False
        return True


def first_bytes(chunks: Iterator[bytes]) -> bytes:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    return head
