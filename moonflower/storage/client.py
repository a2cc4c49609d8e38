"""The boto3 S3 client, configured once: addressing style, timeouts, botocore's own retries,
checksum behaviour and user agent."""

from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from moonflower import __version__
from moonflower.config.model import ChecksumMode, S3Config
from moonflower.core.counters import count

CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
REQUEST_ATTEMPTS = 2
"""botocore's own per-request attempts; whole uploads are retried around it with tenacity."""


def s3_client(config: S3Config) -> Any:
    addressing = "virtual" if _is_aws(config.endpoint) else "path"
    s3_options: Any = {"addressing_style": addressing, **payload_signing(config.checksum)}
    checksums: Any = config.checksum.value
    boto_config = BotoConfig(
        region_name=config.region,
        signature_version="s3v4",
        s3=s3_options,
        retries={"mode": "standard", "max_attempts": REQUEST_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
        user_agent_extra=f"moonflower/{__version__}",
    )
    session = boto3.session.Session(
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        region_name=config.region,
    )
    client = session.client("s3", endpoint_url=config.endpoint, config=boto_config)
    client.meta.events.register("after-call.s3", count_retries)
    client.meta.events.register("after-call-error.s3", count_retries)
    return client


def count_retries(**event: Any) -> None:
    """botocore's own retries of the request just made, for the retry counter of the metrics
    (tenacity's retries of whole operations are counted where they happen)."""
    parsed = event.get("parsed")
    if parsed is None:
        response = getattr(event.get("exception"), "response", None)
        parsed = response if isinstance(response, dict) else {}
    attempts = parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    if isinstance(attempts, int) and attempts > 0:
        count("s3_retries", attempts)


def payload_signing(checksum: ChecksumMode) -> dict[str, bool]:
    """With checksums on, every body we send carries a signed checksum header that S3 checks,
    so SigV4 need not hash it again (botocore would, on plain-HTTP endpoints: one more pass
    over every part, and more memory)."""
    return {"payload_signing_enabled": False} if checksum == ChecksumMode.WHEN_SUPPORTED else {}


def _is_aws(endpoint: str) -> bool:
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.endswith(".amazonaws.com")
