"""S3 access: the client, bucket checks, uploads with checksums and retries."""

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pendulum
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from moonflower import __version__
from moonflower.checksums import file_sha256, same_composite
from moonflower.config import S3Config
from moonflower.errors import Abandoned, StorageError
from moonflower.lifecycle import shutdown
from moonflower.logs import log
from moonflower.s3errors import describe, is_transient

MIB = 1024 * 1024
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
S3_MAX_PARTS = 10_000
S3_MIN_PART_SIZE = 5 * MIB
MULTIPART_THRESHOLD = 64 * MIB
DEFAULT_PART_SIZE = 16 * MIB
UPLOAD_CONCURRENCY = 4
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
UPLOAD_RETRY_BUDGET_SECONDS = 15 * 60
REQUEST_ATTEMPTS = 2
"""botocore's own per-request attempts; whole uploads are retried around it with tenacity."""

SHA256_METADATA_KEY = "sha256"
EXPIRES_METADATA_KEY = "expires-at"
PART_SIZE_METADATA_KEY = "part-size"
DELETE_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    sha256: str
    locked_until: datetime | None = None
    expires: pendulum.DateTime | None = None


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


@dataclass
class Deletion:
    """What became of one backup's versions."""

    key: str
    deleted: int = 0
    locked_until: datetime | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.locked_until is None and self.error is None


def stop_if_abandoned(_transferred: int) -> None:
    """Upload progress callback: an abandoned run stops its uploads (multipart is aborted)."""
    if shutdown.abandoned.is_set():
        raise Abandoned()


def part_size_for(size: int) -> int:
    """A part size that keeps any file under S3's 10,000 part limit."""
    needed = math.ceil(size / (S3_MAX_PARTS - 1)) if size else 0
    return max(DEFAULT_PART_SIZE, S3_MIN_PART_SIZE, math.ceil(needed / MIB) * MIB)


def payload_signing(checksum: str) -> dict[str, bool]:
    """With checksums on, every body we send carries a signed checksum header that S3 checks,
    so SigV4 need not hash it again (botocore would, on plain-HTTP endpoints: one more pass
    over every part, and more memory)."""
    return {"payload_signing_enabled": False} if checksum == "when_supported" else {}


class Storage:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        addressing = "virtual" if _is_aws(config.endpoint) else "path"
        boto_config = BotoConfig(
            region_name=config.region,
            signature_version="s3v4",
            s3={"addressing_style": addressing, **payload_signing(config.checksum)},
            retries={"mode": "standard", "max_attempts": REQUEST_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            request_checksum_calculation=config.checksum,
            response_checksum_validation=config.checksum,
            user_agent_extra=f"moonflower/{__version__}",
        )
        session = boto3.session.Session(
            aws_access_key_id=config.access_key,
            aws_secret_access_key=config.secret_key,
            region_name=config.region,
        )
        self.client: Any = session.client("s3", endpoint_url=config.endpoint, config=boto_config)

    def check_bucket(self) -> None:
        """Fail early, before any dump, when the bucket cannot be used."""
        action = "checking the bucket"
        try:
            self._retrying(action)(self.client.head_bucket, Bucket=self.config.bucket)
            if self.config.governance is not None:
                self._retrying(action)(
                    self.client.get_object_lock_configuration, Bucket=self.config.bucket
                )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, action)) from None

    def object_arguments(
        self, content_type: str, metadata: dict[str, str], force_checksum: bool = False
    ) -> tuple[dict[str, Any], pendulum.DateTime | None]:
        """Arguments shared by PutObject and CreateMultipartUpload: type, metadata, checksum,
        lock and expiry, so an object is protected from its first moment. Returns the expiry."""
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": metadata}
        metadata["moonflower-version"] = __version__
        if self.config.checksum == "when_supported" or force_checksum:
            extra["ChecksumAlgorithm"] = "SHA256"
        now = pendulum.now("UTC")
        if self.config.governance is not None:
            extra["ObjectLockMode"] = "GOVERNANCE"
            extra["ObjectLockRetainUntilDate"] = self.config.governance.after(now)
            # S3 refuses locked uploads without an integrity checksum, whatever S3_CHECKSUM says.
            extra["ChecksumAlgorithm"] = "SHA256"
        expires = self.config.expires_in.after(now) if self.config.expires_in else None
        if expires is not None:
            extra["Expires"] = expires
            metadata[EXPIRES_METADATA_KEY] = expires.isoformat()
        return extra, expires

    def upload(self, path: Path, key: str, content_type: str) -> Uploaded:
        """Upload a finished spool file; retried whole on transient failures, then verified."""
        size = path.stat().st_size
        digest = file_sha256(path)
        extra, expires = self.object_arguments(content_type, {SHA256_METADATA_KEY: digest})
        part_size = part_size_for(size)
        transfer = TransferConfig(
            multipart_threshold=max(MULTIPART_THRESHOLD, part_size),
            multipart_chunksize=part_size,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        action = f"uploading {key}"
        try:
            self._retrying(action)(
                self.client.upload_file,
                str(path),
                self.config.bucket,
                key,
                ExtraArgs=extra,
                Config=transfer,
                Callback=stop_if_abandoned,
            )
            head = self._verify(key, size, digest)
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            S3UploadFailedError,
        ) as error:
            raise StorageError(describe(error, self.config, action)) from None
        return Uploaded(key, size, digest, self._lock_of(key, head), expires)

    def verify_streamed(
        self, key: str, size: int, composite: str, expires: pendulum.DateTime | None
    ) -> Uploaded:
        """Check a multipart upload made while dumping: its size, and S3's composite SHA-256."""
        action = f"checking {key}"
        try:
            head: dict[str, Any] = self.client.head_object(
                Bucket=self.config.bucket, Key=key, ChecksumMode="ENABLED"
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, action)) from None
        reported = str(head.get("ChecksumSHA256") or "")
        if int(head.get("ContentLength", -1)) != size or not same_composite(reported, composite):
            with contextlib.suppress(botocore.exceptions.ClientError):
                self.client.delete_object(Bucket=self.config.bucket, Key=key)
            raise StorageError(f"uploaded object {key} does not match the spool file")
        return Uploaded(key, size, composite, self._lock_of(key, head), expires)

    def _lock_of(self, key: str, head: dict[str, Any]) -> datetime | None:
        locked_until = head.get("ObjectLockRetainUntilDate")
        if self.config.governance is not None and locked_until is None:
            log.warning("S3 reports no Object Lock on %s although S3_GOVERNANCE is set", key)
        return locked_until if isinstance(locked_until, datetime) else None

    def _verify(self, key: str, size: int, digest: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client.head_object(Bucket=self.config.bucket, Key=key)
        stored_size = int(head.get("ContentLength", -1))
        stored_digest = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
        if stored_size != size or stored_digest != digest:
            self.client.delete_object(Bucket=self.config.bucket, Key=key)
            raise StorageError(
                f"uploaded object {key} does not match the spool file "
                f"({stored_size} bytes stored, {size} expected); it was removed"
            )
        return head

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's headers (with S3's checksum), or None when there is no such object."""
        try:
            head: dict[str, Any] = self._retrying(f"reading {key}")(
                self.client.head_object,
                Bucket=self.config.bucket,
                Key=key,
                ChecksumMode="ENABLED",
            )
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(describe(error, self.config, f"reading {key}")) from None
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(describe(error, self.config, f"reading {key}")) from None
        return head

    def download(self, key: str, target: Path, on_bytes: Callable[[int], None]) -> None:
        """Download into `target` (retried whole on transient failures)."""
        action = f"downloading {key}"
        try:
            self._retrying(action)(
                self.client.download_file,
                self.config.bucket,
                key,
                str(target),
                Callback=on_bytes,
                Config=TransferConfig(max_concurrency=UPLOAD_CONCURRENCY),
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, action)) from None

    def abort_uploads_for(self, key: str) -> int:
        """Abort every unfinished multipart upload of exactly this key; how many there were."""
        action = f"cleaning up unfinished uploads of {key}"
        aborted = 0
        try:
            listing = self.client.list_multipart_uploads(Bucket=self.config.bucket, Prefix=key)
            for upload in listing.get("Uploads", []):
                if upload["Key"] == key:
                    self.client.abort_multipart_upload(
                        Bucket=self.config.bucket, Key=key, UploadId=upload["UploadId"]
                    )
                    aborted += 1
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, action)) from None
        return aborted

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Objects directly under `prefix` (no deeper "folders"), every page."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.config.bucket, Prefix=prefix, Delimiter="/")
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], int(item["Size"]), item["LastModified"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, "listing backups")) from None

    def delete_everywhere(self, keys: list[str]) -> list[Deletion]:
        """Delete every version and delete marker of each key, so the space is really freed.

        Versions still under Object Lock are left alone (governance is never bypassed).
        """
        deletions = {key: Deletion(key) for key in keys}
        versions = [(key, version) for key in keys for version in self._versions_of(key)]
        for start in range(0, len(versions), DELETE_BATCH_SIZE):
            self._delete_batch(versions[start : start + DELETE_BATCH_SIZE], deletions)
        return list(deletions.values())

    def _versions_of(self, key: str) -> list[str]:
        paginator = self.client.get_paginator("list_object_versions")
        found: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=key):
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    if entry["Key"] == key:
                        found.append(str(entry["VersionId"]))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, f"listing versions of {key}")) from None
        return found

    def _delete_batch(self, batch: list[tuple[str, str]], deletions: dict[str, Deletion]) -> None:
        objects = [{"Key": key, "VersionId": version} for key, version in batch]
        try:
            response = self.client.delete_objects(
                Bucket=self.config.bucket, Delete={"Objects": objects, "Quiet": False}
            )
        except botocore.exceptions.ClientError as error:
            log.info("batch delete refused (%s); deleting one version at a time", error)
            for key, version in batch:
                self._delete_one(key, version, deletions[key])
            return
        for deleted in response.get("Deleted", []):
            deletions[deleted["Key"]].deleted += 1
        for failure in response.get("Errors", []):
            key = failure["Key"]
            # Some stores leave VersionId out of the error; any version we sent will do.
            version = failure.get("VersionId") or next(v for k, v in batch if k == key)
            self._record_failure(key, version, failure.get("Code", ""), deletions)

    def _delete_one(self, key: str, version: str, deletion: Deletion) -> None:
        try:
            self.client.delete_object(Bucket=self.config.bucket, Key=key, VersionId=version)
            deletion.deleted += 1
        except botocore.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            self._record_failure(key, version, code, {key: deletion})

    def _record_failure(
        self, key: str, version: str | None, code: str, deletions: dict[str, Deletion]
    ) -> None:
        deletion = deletions[key]
        if code == "AccessDenied" and version:
            locked_until = self._retention_of(key, version)
            if locked_until is not None:
                deletion.locked_until = locked_until
                return
        deletion.error = f"S3 refused to delete a version of {key} ({code or 'error'})"

    def _retention_of(self, key: str, version: str) -> datetime | None:
        try:
            head = self.client.head_object(Bucket=self.config.bucket, Key=key, VersionId=version)
        except botocore.exceptions.ClientError:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        return until if isinstance(until, datetime) and until > datetime.now(UTC) else None

    def retrying(self, action: str) -> Retrying:
        return self._retrying(action)

    def _retrying(self, action: str) -> Retrying:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0
            log.warning(
                "%s (attempt %d of %d), retrying in %.1f s",
                describe(error, self.config, action) if error else f"{action}: failed",
                state.attempt_number,
                self.config.max_attempts,
                wait,
            )

        return Retrying(
            stop=stop_after_attempt(self.config.max_attempts)
            | stop_after_delay(UPLOAD_RETRY_BUDGET_SECONDS),
            wait=wait_exponential_jitter(initial=1, max=30, jitter=1),
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )


def _is_aws(endpoint: str) -> bool:
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.endswith(".amazonaws.com")
