"""One small object written only on a condition: created when absent (`If-None-Match: *`),
replaced or removed only while it is the version last seen (`If-Match` on its ETag). A
refused condition is an answer ("someone else wrote in between"), not an error. Each call is
one request with botocore's own retry, never a long wait."""

import contextlib
import email.utils
import time
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from moonflower.config.model import S3Config
from moonflower.core.errors import StorageError
from moonflower.core.logs import log
from moonflower.storage.client import s3_client
from moonflower.storage.errors import (
    S3_FAILURES,
    client_error_parts,
    is_not_implemented,
    translated,
)

REFUSED_CONDITIONS = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class Read:
    data: bytes
    """At most the limit asked for, plus one byte when the object is larger."""
    etag: str
    age: float
    """Seconds since it was last written, by S3's clock."""


def age_on_s3_clock(response: dict[str, Any]) -> float:
    """The `Date` of S3's answer minus the object's `Last-Modified`: no host's clock in it."""
    modified = response.get("LastModified")
    answered = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if modified is None:
        return 0.0
    try:
        now = email.utils.parsedate_to_datetime(answered).timestamp() if answered else None
    except (TypeError, ValueError):
        now = None
    return max(0.0, (now if now is not None else time.time()) - modified.timestamp())


class ConditionalObject:
    def __init__(self, config: S3Config, key: str) -> None:
        self.config = config
        self.key = key
        self._client: Any = s3_client(config)  # without the create-only hooks of Storage
        self._conditional = True

    def read(self, limit: int) -> Read | None:
        """The object now, or None when there is none."""
        action = f"reading {self.key}"
        with translated(self.config, action):
            try:
                response = self._client.get_object(Bucket=self.config.bucket, Key=self.key)
            except botocore.exceptions.ClientError as error:
                parts = client_error_parts(error)
                if parts is not None and (parts[1] == 404 or parts[0] == "NoSuchKey"):
                    return None
                raise
            with contextlib.closing(response["Body"]) as body:
                data: bytes = body.read(limit + 1)
        length = response.get("ContentLength")
        if not response.get("ETag") or (
            isinstance(length, int) and length <= limit and len(data) != length
        ):
            raise StorageError(f"{action}: the answer was cut short")
        return Read(data, str(response.get("ETag", "")), age_on_s3_clock(response))

    def write(self, body: bytes, etag: str | None) -> str | None:
        """Create the object (`etag` None) or replace the version `etag`; its new ETag, or
        None when S3 refused the condition. A store without conditional writes gets the
        write unconditionally (logged once)."""
        arguments: dict[str, Any] = {
            "Key": self.key,
            "Body": body,
            "ContentType": "application/json",
        }
        if self._conditional:
            arguments.update({"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag})
        try:
            response = self._client.put_object(Bucket=self.config.bucket, **arguments)
        except S3_FAILURES as error:
            parts = client_error_parts(error)
            if parts is not None and (parts[0] in REFUSED_CONDITIONS or parts[1] in (409, 412)):
                return None
            if is_not_implemented(error) and self._conditional:
                log.warning(
                    "this S3 store does not implement conditional writes: %s is written "
                    "without them, so two writers at the same moment could both succeed",
                    self.key,
                )
                self._conditional = False
                return self.write(body, etag)
            with translated(self.config, f"writing {self.key}"):
                raise
        return str(response.get("ETag", ""))

    def delete(self, etag: str) -> None:
        """Remove the object if it is still the version `etag`; any failure is ignored (a
        lease left behind goes stale)."""
        with contextlib.suppress(*S3_FAILURES):
            self._client.delete_object(Bucket=self.config.bucket, Key=self.key, IfMatch=etag)
