"""Uploading while dumping: parts of the spool file go to S3 as soon as they are complete.

A backup then takes about max(dump, upload) instead of their sum. The spool file is still
written whole, so when anything goes wrong with the early upload, the caller falls back to a
plain upload of the finished file. When the dump fails, the multipart upload is aborted, so
nothing is left in S3, not even orphaned parts.

Objects uploaded this way carry S3's composite SHA-256 (one SHA-256 per part, hashed
together) and their part size in metadata, so a download can be checked later.
"""

import base64
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum

from moonflower.core.errors import Abandoned, KeyTaken, MoonflowerError
from moonflower.core.logs import current_database, log
from moonflower.core.shutdown import shutdown
from moonflower.storage.checksums import composite_of, part_sha256
from moonflower.storage.objects import PART_SIZE_METADATA_KEY, Uploaded

if TYPE_CHECKING:
    from moonflower.storage.gateway import Storage

POLL_SECONDS = 0.2
PART_WORKERS = 2
PART_ERRORS = (MoonflowerError, OSError)


class StreamingUpload:
    """Follows a growing file and uploads its complete parts from background threads."""

    def __init__(
        self,
        storage: Callable[[], "Storage"],
        key: str,
        path: Path,
        part_size: int,
        content_type: str,
    ) -> None:
        self.storage = storage
        """S3 once it is open: asked when the first part is ready, not before."""
        self.key = key
        self.path = path
        self.part_size = part_size
        self.content_type = content_type
        self.upload_id: str | None = None
        self.started = False
        """A multipart upload was created (parts of it may be left if aborting fails)."""
        self.parts: dict[int, dict[str, Any]] = {}
        self.digests: dict[int, bytes] = {}
        self.offset = 0
        self.failure: str | None = None
        self.expires: pendulum.DateTime | None = None
        self._writer_done = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="stream-upload", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=PART_WORKERS, thread_name_prefix="part")
        self._futures: list[Future[None]] = []
        self._database = current_database.get()

    # --- background --------------------------------------------------------------------------
    def _follow(self) -> None:
        current_database.set(self._database)
        try:
            while not self._writer_done.is_set() and self.failure is None:
                if shutdown.abandoned.is_set():
                    return
                if self._size() >= self.offset + self.part_size:
                    self._submit(self.part_size)
                else:
                    self._writer_done.wait(POLL_SECONDS)
        except PART_ERRORS as error:
            self._failed(error)

    def _failed(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = str(error)
            log.warning("uploading while dumping stopped (%s); will upload when done", error)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _submit(self, length: int) -> None:
        if self.upload_id is None:
            self._create()
        number = len(self._futures) + 1
        self._futures.append(self._pool.submit(self._upload_part, number, self.offset, length))
        self.offset += length

    def _upload_part(self, number: int, start: int, length: int) -> None:
        current_database.set(self._database)
        try:
            if shutdown.abandoned.is_set():
                raise Abandoned()
            assert self.upload_id is not None
            digest = part_sha256(self.path, start, length)
            checksum = base64.b64encode(digest).decode()
            etag = self.storage().upload_part(
                self.key, self.upload_id, number, (self.path, start, length), checksum
            )
            self.parts[number] = {"PartNumber": number, "ETag": etag, "ChecksumSHA256": checksum}
            self.digests[number] = digest
        except Exception as error:
            self._failed(error)

    def _create(self) -> None:
        metadata = {PART_SIZE_METADATA_KEY: str(self.part_size)}
        arguments, self.expires = self.storage().object_arguments(
            self.content_type, metadata, force_checksum=True
        )
        self.upload_id = self.storage().start_multipart(self.key, arguments)
        self.started = True
        log.info("uploading while dumping: multipart upload started")

    def _wait_for_parts(self) -> None:
        for future in self._futures:
            future.result()

    # --- owner -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop_following(self) -> None:
        self._writer_done.set()
        self._thread.join()
        self._wait_for_parts()

    def finish(self) -> Uploaded | None:
        """After a successful dump: upload the rest and complete. None means "upload the file
        the ordinary way" (it was small, or the early upload failed)."""
        self.stop_following()
        try:
            if self.upload_id is None:
                return None
            size = self._size()
            while self.offset < size and self.failure is None:
                if shutdown.abandoned.is_set():
                    raise Abandoned()
                self._submit(min(self.part_size, size - self.offset))
            self._wait_for_parts()
            if self.failure is not None:
                self.abort()
                return None
            return self._complete(size)
        except KeyTaken:  # another writer's object holds the key: uploading again cannot help
            self.abort()
            raise
        except PART_ERRORS as error:
            log.warning("finishing the early upload failed (%s); uploading the file again", error)
            self.abort()
            return None
        finally:
            self._pool.shutdown(wait=True)

    def _complete(self, size: int) -> Uploaded:
        assert self.upload_id is not None
        numbers = sorted(self.parts)
        parts = [self.parts[number] for number in numbers]
        self.storage().complete_multipart(self.key, self.upload_id, parts)
        self.upload_id = None
        composite = composite_of(self.digests[number] for number in numbers)
        return self.storage().verify_streamed(self.key, size, composite, self.expires)

    def abort(self) -> None:
        self._pool.shutdown(wait=True)
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        with contextlib.suppress(MoonflowerError):
            self.storage().abort_multipart(self.key, upload_id)
            log.info("aborted the multipart upload of %s", self.key)


@contextlib.contextmanager
def streaming_upload(
    storage: Callable[[], "Storage"], key: str, path: Path, part_size: int, content_type: str
) -> Iterator[StreamingUpload]:
    """Start following `path`; on any exception in the block, abort so nothing is left."""
    stream = StreamingUpload(storage, key, path, part_size, content_type)
    stream.start()
    try:
        yield stream
    except BaseException:
        stream.stop_following()
        stream.abort()
        raise
