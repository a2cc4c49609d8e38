"""S3 access: the client, bucket checks, uploads with checksums and retries."""

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
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
from moonflower.config import S3Config
from moonflower.errors import StorageError
from moonflower.logs import log
from moonflower.redact import redactor

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
TRANSIENT_ERROR_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "BadDigest",
        "IncompleteBody",
        "XAmzContentSHA256Mismatch",
    }
)
NETWORK_ERRORS = (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)
CREDENTIAL_ERROR_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
)


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    sha256: str


def part_size_for(size: int) -> int:
    """A part size that keeps any file under S3's 10,000 part limit."""
    needed = math.ceil(size / (S3_MAX_PARTS - 1)) if size else 0
    return max(DEFAULT_PART_SIZE, S3_MIN_PART_SIZE, math.ceil(needed / MIB) * MIB)


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def client_error_parts(error: BaseException) -> tuple[str, int] | None:
    """(code, HTTP status) of a ClientError, looking through boto3's S3UploadFailedError."""
    for candidate in (error, error.__cause__, error.__context__):
        if isinstance(candidate, botocore.exceptions.ClientError):
            response = candidate.response
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            return code, status
    return None


def is_transient(error: BaseException) -> bool:
    if isinstance(error, NETWORK_ERRORS):
        return True
    parts = client_error_parts(error)
    if parts is None:
        return False
    code, status = parts
    return code in TRANSIENT_ERROR_CODES or status >= 500 or status in (408, 429)


def describe(error: BaseException, config: S3Config, action: str) -> str:
    """A one-line, secret-free explanation of an S3 failure."""
    parts = client_error_parts(error)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return (
            f"{action}: no S3 credentials found; set S3_ACCESS_KEY and S3_SECRET_KEY "
            "(or provide AWS credentials through the environment, a profile or an instance role)"
        )
    if isinstance(
        error, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
    ):
        return f"{action}: cannot reach the S3 endpoint {config.endpoint}"
    if isinstance(error, NETWORK_ERRORS):
        return f"{action}: connection to {config.endpoint} failed: {redactor.mask(str(error))}"
    if parts is not None:
        code, status = parts
        if code in ("NoSuchBucket", "404") or (status == 404 and "bucket" in action):
            return f'{action}: bucket "{config.bucket}" does not exist at {config.endpoint}'
        if code in CREDENTIAL_ERROR_CODES or status == 403:
            return (
                f"{action}: S3 refused the request ({code or status}); check S3_ACCESS_KEY, "
                "S3_SECRET_KEY and the permissions on the bucket"
            )
        return f"{action}: S3 answered {code or 'an error'} (HTTP {status})"
    return f"{action}: {redactor.mask(str(error)) or type(error).__name__}"


class Storage:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        addressing = "virtual" if _is_aws(config.endpoint) else "path"
        boto_config = BotoConfig(
            region_name=config.region,
            signature_version="s3v4",
            s3={"addressing_style": addressing},
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
        try:
            self._retrying("checking the bucket")(
                self.client.head_bucket, Bucket=self.config.bucket
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StorageError(describe(error, self.config, "checking the bucket")) from None

    def upload(self, path: Path, key: str, content_type: str) -> Uploaded:
        """Upload a finished spool file; retried whole on transient failures, then verified."""
        size = path.stat().st_size
        digest = file_sha256(path)
        extra: dict[str, Any] = {
            "ContentType": content_type,
            "Metadata": {SHA256_METADATA_KEY: digest, "moonflower-version": __version__},
        }
        if self.config.checksum == "when_supported":
            extra["ChecksumAlgorithm"] = "SHA256"
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
            )
            self._verify(key, size, digest)
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            S3UploadFailedError,
        ) as error:
            raise StorageError(describe(error, self.config, action)) from None
        return Uploaded(key, size, digest)

    def _verify(self, key: str, size: int, digest: str) -> None:
        head = self.client.head_object(Bucket=self.config.bucket, Key=key)
        stored_size = int(head.get("ContentLength", -1))
        stored_digest = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
        if stored_size != size or stored_digest != digest:
            self.client.delete_object(Bucket=self.config.bucket, Key=key)
            raise StorageError(
                f"uploaded object {key} does not match the spool file "
                f"({stored_size} bytes stored, {size} expected); it was removed"
            )

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
