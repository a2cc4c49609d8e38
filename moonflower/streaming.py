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
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions

from moonflower.checksums import composite_of
from moonflower.errors import Abandoned, MoonflowerError
from moonflower.lifecycle import shutdown
from moonflower.logs import current_database, log
from moonflower.storage import PART_SIZE_METADATA_KEY, Storage, Uploaded

POLL_SECONDS = 0.2
PART_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError)


class StreamingUpload:
    """Follows a growing file and uploads its complete parts in a background thread."""

    def __init__(
        self, storage: Storage, key: str, path: Path, part_size: int, content_type: str
    ) -> None:
        self.storage = storage
        self.key = key
        self.path = path
        self.part_size = part_size
        self.content_type = content_type
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.digests: list[bytes] = []
        self.offset = 0
        self.failure: str | None = None
        self.expires = None
        self._writer_done = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="stream-upload", daemon=True)
        self._database = current_database.get()

    # --- background --------------------------------------------------------------------------
    def _follow(self) -> None:
        current_database.set(self._database)
        try:
            while not self._writer_done.is_set():
                if shutdown.abandoned.is_set():
                    return
                if self._size() >= self.offset + self.part_size:
                    self._upload_next(self.part_size)
                else:
                    time.sleep(POLL_SECONDS)
        except (MoonflowerError, *PART_ERRORS) as error:
            self.failure = str(error)
            log.warning("uploading while dumping stopped (%s); will upload when done", error)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _upload_next(self, length: int) -> None:
        if self.upload_id is None:
            self._create()
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            body = handle.read(length)
        if len(body) != length:
            raise MoonflowerError(f"spool file shorter than expected at offset {self.offset}")
        digest = hashlib.sha256(body).digest()
        number = len(self.parts) + 1
        checksum = base64.b64encode(digest).decode()
        response = self.storage.retrying(f"uploading part {number} of {self.key}")(
            self.storage.client.upload_part,
            Bucket=self.storage.config.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
            ChecksumSHA256=checksum,
        )
        self.parts.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
        )
        self.digests.append(digest)
        self.offset += length

    def _create(self) -> None:
        metadata = {PART_SIZE_METADATA_KEY: str(self.part_size)}
        arguments, self.expires = self.storage.object_arguments(
            self.content_type, metadata, force_checksum=True
        )
        response = self.storage.retrying(f"starting the upload of {self.key}")(
            self.storage.client.create_multipart_upload,
            Bucket=self.storage.config.bucket,
            Key=self.key,
            **arguments,
        )
        self.upload_id = response["UploadId"]
        log.info("uploading while dumping: multipart upload started")

    # --- owner -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop_following(self) -> None:
        self._writer_done.set()
        self._thread.join()

    def finish(self) -> Uploaded | None:
        """After a successful dump: upload the rest and complete. None means "upload the file
        the ordinary way" (it was small, or the early upload failed)."""
        self.stop_following()
        if self.upload_id is None:
            return None
        if self.failure is not None:
            self.abort()
            return None
        try:
            size = self._size()
            while self.offset < size:
                if shutdown.abandoned.is_set():
                    raise Abandoned()
                self._upload_next(min(self.part_size, size - self.offset))
            return self._complete(size)
        except (MoonflowerError, *PART_ERRORS) as error:
            log.warning("finishing the early upload failed (%s); uploading the file again", error)
            self.abort()
            return None

    def _complete(self, size: int) -> Uploaded:
        self.storage.retrying(f"completing the upload of {self.key}")(
            self.storage.client.complete_multipart_upload,
            Bucket=self.storage.config.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )
        self.upload_id = None
        composite = composite_of(self.digests)
        return self.storage.verify_streamed(self.key, size, composite, self.expires)

    def abort(self) -> None:
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        with contextlib.suppress(*PART_ERRORS):
            self.storage.client.abort_multipart_upload(
                Bucket=self.storage.config.bucket, Key=self.key, UploadId=upload_id
            )
            log.info("aborted the multipart upload of %s", self.key)


@contextlib.contextmanager
def streaming_upload(
    storage: Storage, key: str, path: Path, part_size: int, content_type: str
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
