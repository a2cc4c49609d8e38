"""Create-only writes, and a record of what this process wrote.

Every PutObject and CompleteMultipartUpload is sent with `If-None-Match: *`, so S3 refuses to
replace an object that already exists under the key: two runs that produce the same key (two
instances, the same database, the same millisecond) cannot overwrite each other. Stores that
ignore the condition are covered by the record: the ETag and version id S3 answered for each
write, so Moonflower only ever removes an object it can show it wrote.
"""

import threading
from dataclasses import dataclass
from typing import Any

WRITE_OPERATIONS = ("PutObject", "CompleteMultipartUpload")
_KEY_IN_CONTEXT = "moonflower_key"


@dataclass(frozen=True)
class Written:
    """What S3 answered to one of this process's writes."""

    etag: str
    version_id: str | None

    def is_this(self, head: dict[str, Any]) -> bool:
        """Is `head` (a HEAD answer for the key) about this write?"""
        if self.version_id is not None:
            return head.get("VersionId") == self.version_id
        return str(head.get("ETag", "")).strip('"') == self.etag.strip('"')


class WriteLog:
    """Hooks on a boto3 client: writes are create-only, and their answers are kept by key."""

    def __init__(self, client: Any) -> None:
        self.conditional = True
        """Off once the store has answered 501 to `If-None-Match` (it does not implement it)."""
        self._written: dict[str, Written] = {}
        self._mutex = threading.Lock()
        events = client.meta.events
        for operation in WRITE_OPERATIONS:
            events.register(f"before-parameter-build.s3.{operation}", self._create_only)
            events.register(f"after-call.s3.{operation}", self._remember)

    def _create_only(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self.conditional:
            params.setdefault("IfNoneMatch", "*")
        context[_KEY_IN_CONTEXT] = params.get("Key")

    def _remember(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = context.get(_KEY_IN_CONTEXT)
        etag = parsed.get("ETag")
        if isinstance(key, str) and etag and "Error" not in parsed:
            version = parsed.get("VersionId")
            # "null" (some stores, for buckets without versioning) names no version to ask for.
            version = None if version in (None, "", "null") else str(version)
            with self._mutex:
                self._written[key] = Written(str(etag), version)

    def take(self, key: str) -> Written | None:
        """What this process last wrote under `key` (forgotten once taken)."""
        with self._mutex:
            return self._written.pop(key, None)
