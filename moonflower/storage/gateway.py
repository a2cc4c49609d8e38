"""The S3 gateway: every call Moonflower makes to S3 goes through `Storage`.

Each method retries transient failures and turns what boto3 raises into a one-line
StorageError, so callers never see botocore's exceptions.
"""

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import pendulum
from boto3.s3.transfer import TransferConfig

from moonflower import __version__
from moonflower.config.model import ChecksumMode, S3Config
from moonflower.core.errors import KeyTaken, StorageError, Unsupported
from moonflower.core.logs import log
from moonflower.storage.checksums import file_sha256, same_parts, same_whole
from moonflower.storage.client import s3_client
from moonflower.storage.deletion import VersionDeleter
from moonflower.storage.errors import S3_FAILURES, error_code, retrying, translated
from moonflower.storage.objects import (
    EXPIRES_METADATA_KEY,
    MULTIPART_THRESHOLD,
    SHA256_METADATA_KEY,
    Deletion,
    StoredObject,
    Uploaded,
    part_size_for,
    stop_if_abandoned,
)
from moonflower.storage.slices import FileSlice
from moonflower.storage.writes import WriteLog, Written

UPLOAD_CONCURRENCY = 4
NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")


class Storage:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self._client: Any = s3_client(config)
        self._writes = WriteLog(self._client)

    def _call(self, action: str, method: str, **arguments: Any) -> Any:
        """One S3 request: retried when transient, failures as StorageError."""
        with translated(self.config, action):
            return retrying(self.config, action)(
                getattr(self._client, method), Bucket=self.bucket, **arguments
            )

    def check_bucket(self) -> None:
        """Fail early, before any dump, when the bucket cannot be used."""
        self._call("checking the bucket", "head_bucket")
        if self.config.governance is not None:
            self._call("checking the bucket", "get_object_lock_configuration")

    def object_arguments(
        self,
        content_type: str,
        metadata: dict[str, str],
        force_checksum: bool = False,
        lasting: bool = True,
    ) -> tuple[dict[str, Any], pendulum.DateTime | None]:
        """Arguments shared by PutObject and CreateMultipartUpload: type, metadata, checksum,
        lock and expiry, so an object is protected from its first moment. Returns the expiry."""
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": metadata}
        metadata["moonflower-version"] = __version__
        if self.config.checksum == ChecksumMode.WHEN_SUPPORTED or force_checksum:
            extra["ChecksumAlgorithm"] = "SHA256"
        now = pendulum.now("UTC")
        if self.config.governance is not None and lasting:
            extra["ObjectLockMode"] = "GOVERNANCE"
            extra["ObjectLockRetainUntilDate"] = self.config.governance.after(now)
            # S3 refuses locked uploads without an integrity checksum, whatever S3_CHECKSUM says.
            extra["ChecksumAlgorithm"] = "SHA256"
        expires = (
            self.config.expires_in.after(now)
            if self.config.expires_in and self.config.expiry_date_applies
            else None
        )
        if expires is not None:
            extra["Expires"] = expires
            metadata[EXPIRES_METADATA_KEY] = expires.isoformat()
        return extra, expires

    def upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        metadata: dict[str, str] | None = None,
        lasting: bool = True,
    ) -> Uploaded:
        """Upload a finished spool file; retried whole on transient failures, then verified.
        An object that is not `lasting` (superseded soon, such as a partial WAL segment) is
        not locked: it must be removable when its successor lands."""
        size = path.stat().st_size
        digest = file_sha256(path)
        extra, expires = self.object_arguments(
            content_type, {**(metadata or {}), SHA256_METADATA_KEY: digest}, lasting=lasting
        )
        part_size = part_size_for(size)
        transfer = TransferConfig(
            multipart_threshold=max(MULTIPART_THRESHOLD, part_size),
            multipart_chunksize=part_size,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        action = f"uploading {key}"

        def send() -> None:
            with translated(self.config, action):
                retrying(self.config, action)(
                    self._client.upload_file,
                    str(path),
                    self.bucket,
                    key,
                    ExtraArgs=extra,
                    Config=transfer,
                    Callback=stop_if_abandoned,
                )

        with contextlib.suppress(KeyTaken):
            self._create_only(send)
        # Refused as taken, the key may hold this run's own earlier attempt: checked here.
        head, written = self._stored(key, size, lambda head: same_whole(head, size, digest))
        locked_until = self._lock_of(key, head, written) if lasting else None
        return Uploaded(key, size, digest, locked_until, expires)

    def start_multipart(self, key: str, arguments: dict[str, Any]) -> str:
        """Start a multipart upload; its upload id."""
        response = self._call(
            f"starting the upload of {key}", "create_multipart_upload", Key=key, **arguments
        )
        return str(response["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, part: tuple[Path, int, int], checksum: str
    ) -> str:
        """Send bytes `part` = (file, start, length) as part `number`; its ETag. The part is
        read from the file on every attempt, never held in memory."""
        path, start, length = part
        action = f"uploading part {number} of {key}"

        def send() -> str:
            with FileSlice(path, start, length) as body:
                response = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumSHA256=checksum,
                )
            return str(response["ETag"])

        with translated(self.config, action):
            return retrying(self.config, action)(send)

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        """Complete, create-only; when S3 says the key is taken, `verify_streamed` tells this
        run's own earlier attempt from another writer's object."""
        with contextlib.suppress(KeyTaken):
            self._create_only(
                lambda: self._call(
                    f"completing the upload of {key}",
                    "complete_multipart_upload",
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            )

    def _create_only(self, write: Callable[[], None]) -> None:
        """`write`, sent create-only; a store that does not implement that (HTTP 501) gets
        it once more without the condition, and every later write of this run too."""
        try:
            write()
        except Unsupported:
            if not self._writes.conditional:
                raise
            self._writes.conditional = False
            log.warning(
                "this S3 store does not implement conditional writes (If-None-Match); "
                "writing without them, so two runs writing the same key at the same moment "
                "could replace each other's object"
            )
            write()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        action = f"aborting the upload of {key}"
        with translated(self.config, action):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def verify_streamed(
        self, key: str, size: int, composite: str, expires: pendulum.DateTime | None
    ) -> Uploaded:
        """Check a multipart upload made while dumping: its size, and S3's composite SHA-256."""
        head, written = self._stored(key, size, lambda head: same_parts(head, size, composite))
        return Uploaded(key, size, composite, self._lock_of(key, head, written), expires)

    def put_probe(self, key: str, body: bytes) -> None:
        """Write a small object (the preflight's proof that the bucket is writable), the way
        backups are written (create-only where the store implements it)."""

        def send() -> None:
            with translated(self.config, f"writing {key}"):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body)

        self._create_only(send)

    def _stored(
        self, key: str, size: int, matches: Callable[[dict[str, Any]], bool]
    ) -> tuple[dict[str, Any], Written | None]:
        """The HEAD of what this run stored under `key`, checked with `matches`. A mismatch is
        removed only when it is provably this run's write (its version id, or its ETag);
        anything else under the key belongs to another writer and is left alone."""
        written = self._writes.take(key)
        version = {"VersionId": written.version_id} if written and written.version_id else {}
        with translated(self.config, f"checking {key}"):
            head: dict[str, Any] = self._client.head_object(
                Bucket=self.bucket, Key=key, ChecksumMode="ENABLED", **version
            )
        if matches(head):
            return head, written
        if written is None or not written.is_this(head):
            raise KeyTaken(
                f"S3 already holds a different object under {key}, not written by this run "
                "(two runs backing up the same database at the same moment?); it was left "
                "alone and this backup was not stored"
            )
        self._remove(key, written)
        raise StorageError(
            f"uploaded object {key} does not match the spool file "
            f"({head.get('ContentLength')} bytes stored, {size} expected); "
            "it was removed"
        )

    def delete_latest(self, key: str) -> None:
        """Delete what `key` shows now (a delete marker where the bucket keeps versions): for
        objects that were only ever stand-ins, such as a superseded partial WAL segment."""
        self._call(f"deleting {key}", "delete_object", Key=key)

    def _remove(self, key: str, written: Written) -> None:
        """Remove this run's write: its own version when the bucket keeps versions."""
        version = {"VersionId": written.version_id} if written.version_id else {}
        with contextlib.suppress(*S3_FAILURES):
            self._client.delete_object(Bucket=self.bucket, Key=key, **version)

    def _lock_of(
        self, key: str, head: dict[str, Any], written: Written | None
    ) -> pendulum.DateTime | None:
        """The retention S3 reports; with S3_GOVERNANCE set, an object it did not lock is
        removed (when it is this run's) and the backup fails (a backup that could be deleted
        is not what was asked)."""
        locked_until = head.get("ObjectLockRetainUntilDate")
        if self.config.governance is not None and locked_until is None:
            if written is not None:
                self._remove(key, written)
            raise StorageError(
                f"S3 did not lock {key} although S3_GOVERNANCE is set (does the store apply "
                "Object Lock to this kind of upload?); "
                + ("the object was removed" if written else "it was not written by this run")
            )
        return pendulum.instance(locked_until) if isinstance(locked_until, datetime) else None

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's headers (with S3's checksum), or None when there is no such object."""
        action = f"reading {key}"
        with translated(self.config, action):
            try:
                head: dict[str, Any] = retrying(self.config, action)(
                    self._client.head_object, Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"
                )
            except botocore.exceptions.ClientError as error:
                if error_code(error) in NOT_FOUND_CODES:
                    return None
                raise
        return head

    def download(self, key: str, target: Path, on_bytes: Callable[[int], None]) -> None:
        """Download into `target` (retried whole on transient failures)."""
        action = f"downloading {key}"
        with translated(self.config, action):
            retrying(self.config, action)(
                self._client.download_file,
                self.bucket,
                key,
                str(target),
                Callback=on_bytes,
                Config=TransferConfig(max_concurrency=UPLOAD_CONCURRENCY),
            )

    def stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """The object's bytes as they arrive, in one GET and without retries: a caller that
        cannot start over mid-stream falls back to `download`."""
        action = f"downloading {key}"
        response = self._call(action, "get_object", Key=key)
        with contextlib.closing(response["Body"]) as body, translated(self.config, action):
            yield from body.iter_chunks(chunk_size)

    def read_small(self, key: str, limit: int) -> bytes:
        """A small object's whole content (a description, not a backup); at most `limit`
        bytes are read, and a larger object is refused."""
        response = self._call(f"reading {key}", "get_object", Key=key)
        with contextlib.closing(response["Body"]) as body:
            data: bytes = body.read(limit + 1)
        if len(data) > limit:
            raise StorageError(f"{key} is larger than {limit} bytes: not written by Moonflower")
        return data

    def abort_uploads_for(self, key: str) -> int:
        """Abort every unfinished multipart upload of exactly this key; how many there were."""
        action = f"cleaning up unfinished uploads of {key}"
        aborted = 0
        with translated(self.config, action):
            listing = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            for upload in listing.get("Uploads", []):
                if upload["Key"] == key:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def list_objects(self, prefix: str, deep: bool = False) -> Iterator[StoredObject]:
        """Objects directly under `prefix` (with `deep`, in its "folders" too), every page."""
        paginator = self._client.get_paginator("list_objects_v2")
        folders = {} if deep else {"Delimiter": "/"}
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, **folders)
        with translated(self.config, "listing backups"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(
                        item["Key"], int(item["Size"]), pendulum.instance(item["LastModified"])
                    )

    def delete_everywhere(self, keys: list[str]) -> list[Deletion]:
        """Delete every version and delete marker of each key, so the space is really freed.

        Versions still under Object Lock are left alone (governance is never bypassed).
        """
        return VersionDeleter(self._client, self.config).delete(keys)
