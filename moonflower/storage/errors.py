"""S3 failures: which to retry, how to explain them in one line, and the one place where
boto3's exceptions become StorageError."""

import contextlib
import socket
import ssl
from collections.abc import Iterator

import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from moonflower.config.model import S3Config
from moonflower.core.counters import count
from moonflower.core.errors import KeyTaken, StorageError, Unsupported
from moonflower.core.logs import log
from moonflower.core.redact import redactor

RETRY_BUDGET_SECONDS = 15 * 60

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
        "ConditionalRequestConflict",
    }
)
NETWORK_ERRORS = (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)
CREDENTIAL_ERROR_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
)


NO_OBJECT_LOCK = (
    'S3_GOVERNANCE is set, but bucket "{bucket}" does not have Object Lock enabled '
    "(enable it on the bucket, or unset S3_GOVERNANCE)"
)


def client_error_parts(error: BaseException) -> tuple[str, int] | None:
    """(code, HTTP status) of a ClientError, looking through boto3's S3UploadFailedError."""
    for candidate in (error, error.__cause__, error.__context__):
        if isinstance(candidate, botocore.exceptions.ClientError):
            response = candidate.response
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            return code, status
    return None


def is_key_taken(error: BaseException) -> bool:
    """S3 refused a create-only write (If-None-Match: *): the key already holds an object."""
    parts = client_error_parts(error)
    return parts is not None and (parts[0] == "PreconditionFailed" or parts[1] == 412)


def is_not_implemented(error: BaseException) -> bool:
    """HTTP 501: the store does not implement what the request asked; asking again won't help."""
    parts = client_error_parts(error)
    return parts is not None and (parts[0] == "NotImplemented" or parts[1] == 501)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, NETWORK_ERRORS):
        return True
    parts = client_error_parts(error)
    if parts is None or is_not_implemented(error):
        return False
    code, status = parts
    return code in TRANSIENT_ERROR_CODES or status >= 500 or status in (408, 429)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what botocore wrapped in it, and their causes."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "kwargs", {}).get("error")
        for inner in (wrapped, current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                pending.append(inner)


def connection_failure(error: BaseException) -> str:
    """Why a connection failed, in an operator's words: DNS, refused, TLS or no answer."""
    for cause in causes(error):
        if isinstance(cause, socket.gaierror):
            return "its host name does not resolve (DNS)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (nothing listens on that host and port)"
        if isinstance(cause, ssl.SSLError | botocore.exceptions.SSLError):
            return f"the TLS handshake failed ({redactor.mask(str(cause))[:200]})"
        if isinstance(cause, botocore.exceptions.ConnectTimeoutError | TimeoutError):
            return "no answer in time (a firewall, or a wrong address?)"
    return ""


def describe(error: BaseException, config: S3Config, action: str) -> str:
    """A one-line, secret-free explanation of an S3 failure."""
    parts = client_error_parts(error)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return (
            f"{action}: no S3 credentials found; set S3_ACCESS_KEY and S3_SECRET_KEY "
            "(or provide AWS credentials through the environment, a profile or an instance role)"
        )
    why = connection_failure(error)
    if why:
        return f"{action}: cannot reach the S3 endpoint {config.endpoint}: {why}"
    if isinstance(
        error, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
    ):
        return f"{action}: cannot reach the S3 endpoint {config.endpoint}"
    if isinstance(error, NETWORK_ERRORS):
        return f"{action}: connection to {config.endpoint} failed: {redactor.mask(str(error))}"
    if parts is not None:
        code, status = parts
        if code == "ObjectLockConfigurationNotFoundError" or (
            code == "InvalidRequest" and "ObjectLock" in str(error)
        ):
            return f"{action}: {NO_OBJECT_LOCK.format(bucket=config.bucket)}"
        if code in ("NoSuchBucket", "404") or (status == 404 and "bucket" in action):
            return f'{action}: bucket "{config.bucket}" does not exist at {config.endpoint}'
        if is_key_taken(error):
            return f"{action}: S3 already holds an object under this key and kept it"
        if code in CREDENTIAL_ERROR_CODES or status == 403:
            return (
                f"{action}: S3 refused the request ({code or status}); check S3_ACCESS_KEY, "
                "S3_SECRET_KEY and the permissions on the bucket"
            )
        return f"{action}: S3 answered {code or 'an error'} (HTTP {status})"
    return f"{action}: {redactor.mask(str(error)) or type(error).__name__}"


S3_FAILURES = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    S3UploadFailedError,
)
"""What boto3 raises when S3 refuses or cannot be reached."""


@contextlib.contextmanager
def translated(config: S3Config, action: str) -> Iterator[None]:
    """Turn an S3 failure inside the block into a one-line StorageError."""
    try:
        yield
    except S3_FAILURES as error:
        failure = (
            KeyTaken
            if is_key_taken(error)
            else Unsupported
            if is_not_implemented(error)
            else StorageError
        )
        raise failure(describe(error, config, action)) from None


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def retrying(config: S3Config, action: str) -> Retrying:
    """Whole-request retries with backoff, for transient failures only."""

    def before_sleep(state: RetryCallState) -> None:
        count("s3_retries")
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning(
            "%s (attempt %d of %d), retrying in %.1f s",
            describe(error, config, action) if error else f"{action}: failed",
            state.attempt_number,
            config.max_attempts,
            wait,
        )

    return Retrying(
        stop=stop_after_attempt(config.max_attempts) | stop_after_delay(RETRY_BUDGET_SECONDS),
        wait=wait_exponential_jitter(initial=1, max=30, jitter=1),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
