"""Classifying S3 failures: which to retry, and how to explain them in one line."""

import botocore.exceptions

from moonflower.config import S3Config
from moonflower.redact import redactor

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
        if code == "ObjectLockConfigurationNotFoundError" or (
            code == "InvalidRequest" and "ObjectLock" in str(error)
        ):
            return f"{action}: {NO_OBJECT_LOCK.format(bucket=config.bucket)}"
        if code in ("NoSuchBucket", "404") or (status == 404 and "bucket" in action):
            return f'{action}: bucket "{config.bucket}" does not exist at {config.endpoint}'
        if code in CREDENTIAL_ERROR_CODES or status == 403:
            return (
                f"{action}: S3 refused the request ({code or status}); check S3_ACCESS_KEY, "
                "S3_SECRET_KEY and the permissions on the bucket"
            )
        return f"{action}: S3 answered {code or 'an error'} (HTTP {status})"
    return f"{action}: {redactor.mask(str(error)) or type(error).__name__}"
