"""An unreachable endpoint says why: DNS, refused, TLS or no answer."""

import socket
import ssl

import botocore.exceptions
import pytest

from moonflower.config.model import S3Config
from moonflower.storage.errors import describe

CONFIG = S3Config(
    endpoint="https://s3.example.test",
    region="us-west-1",
    bucket="backups",
    prefix="",
    access_key=None,
    secret_key=None,
)


def wrapped(inner: BaseException) -> BaseException:
    return botocore.exceptions.EndpointConnectionError(
        endpoint_url="https://s3.example.test/backups", error=inner
    )


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (wrapped(socket.gaierror(-2, "Name or service not known")), "does not resolve (DNS)"),
        (wrapped(ConnectionRefusedError(111, "Connection refused")), "connection refused"),
        (wrapped(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), "TLS"),
        (
            botocore.exceptions.ConnectTimeoutError(endpoint_url="https://s3.example.test"),
            "no answer in time",
        ),
    ],
)
def test_an_unreachable_endpoint_says_why(error: BaseException, why: str) -> None:
    message = describe(error, CONFIG, "checking the bucket")

    assert message.startswith("checking the bucket: cannot reach the S3 endpoint ")
    assert why in message
    assert "\n" not in message
