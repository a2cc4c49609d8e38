"""Deleting backups for good: every version and delete marker of a key, in batches, with
versions still under Object Lock reported as locked rather than failed."""

from datetime import datetime
from typing import Any

import botocore.exceptions
import pendulum

from moonflower.config.model import S3Config
from moonflower.core.logs import log
from moonflower.storage.errors import error_code, translated
from moonflower.storage.objects import Deletion

DELETE_BATCH_SIZE = 1000


class VersionDeleter:
    def __init__(self, client: Any, config: S3Config) -> None:
        self.client = client
        self.config = config
        self.bucket = config.bucket

    def delete(self, keys: list[str]) -> list[Deletion]:
        deletions = {key: Deletion(key) for key in keys}
        versions = [(key, version) for key in keys for version in self._versions_of(key)]
        for start in range(0, len(versions), DELETE_BATCH_SIZE):
            self._delete_batch(versions[start : start + DELETE_BATCH_SIZE], deletions)
        return list(deletions.values())

    def _versions_of(self, key: str) -> list[str]:
        paginator = self.client.get_paginator("list_object_versions")
        found: list[str] = []
        with translated(self.config, f"listing versions of {key}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    if entry["Key"] == key:
                        found.append(str(entry["VersionId"]))
        return found

    def _delete_batch(self, batch: list[tuple[str, str]], deletions: dict[str, Deletion]) -> None:
        objects = [{"Key": key, "VersionId": version} for key, version in batch]
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": False}
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
            self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
            deletion.deleted += 1
        except botocore.exceptions.ClientError as error:
            self._record_failure(key, version, error_code(error), {key: deletion})

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

    def _retention_of(self, key: str, version: str) -> pendulum.DateTime | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, VersionId=version)
        except botocore.exceptions.ClientError:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        if not isinstance(until, datetime):
            return None
        locked_until = pendulum.instance(until)
        return locked_until if locked_until > pendulum.now("UTC") else None
