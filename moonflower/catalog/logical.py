"""What is in the bucket: Moonflower's backups under S3_PATH, with their details."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pendulum

from moonflower.catalog.flags import flag_reason, flagged
from moonflower.catalog.keys import BackupKey, listing_prefix, parse_key
from moonflower.catalog.trust import dated_later
from moonflower.config.model import S3Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.storage.gateway import Storage
from moonflower.storage.objects import (
    EXPIRES_METADATA_KEY,
    PART_SIZE_METADATA_KEY,
    SHA256_METADATA_KEY,
)

DETAIL_WORKERS = 8
"""S3 refuses requests signed more than 15 minutes off its clock (RequestTimeTooSkewed)."""


class NotFound(MoonflowerError):
    """No backup matches what was asked for."""


@dataclass(frozen=True)
class BackupInfo:
    backup: BackupKey
    size: int
    locked_until: pendulum.DateTime | None = None
    expires: pendulum.DateTime | None = None
    sha256: str | None = None
    """The whole file's SHA-256 recorded at upload (single-request uploads)."""
    part_size: int | None = None
    """For objects uploaded while dumping: their part size, to check S3's composite checksum."""
    s3_checksum: str | None = None
    flagged: bool = False
    """Its run flagged it (the size check): a restore passes over it unless named."""

    @property
    def key(self) -> str:
        return self.backup.key

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.backup.key,
            "database": self.backup.database,
            "created": self.backup.created.in_timezone("UTC").isoformat().replace("+00:00", "Z"),
            "size": self.size,
            "encrypted": self.backup.encrypted,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "expires": self.expires.isoformat() if self.expires else None,
            "flagged": self.flagged,
        }


def as_pendulum(moment: object) -> pendulum.DateTime | None:
    return pendulum.instance(moment) if isinstance(moment, datetime) else None


def our_backups(storage: Storage, prefix: str) -> list[tuple[BackupKey, int]]:
    """Every backup directly under `prefix` that follows our naming and passes the trust
    filter (catalog/trust.py), with its size."""
    found = []
    for item in storage.list_objects(listing_prefix(prefix)):
        backup = parse_key(item.key, prefix)
        if backup is None:
            continue
        untrusted = dated_later(backup.created, item)
        if untrusted is not None:
            log.warning("ignoring %s: %s", item.key, untrusted)
            continue
        found.append((backup, item.size))
    return found


class Catalog:
    def __init__(self, storage: Storage, config: S3Config) -> None:
        self.storage = storage
        self.config = config

    def backups(self, databases: list[str] | None = None, details: bool = True) -> list[BackupInfo]:
        """Newest first. With `details`, each object's lock, expiry and checksum are read."""
        found = [
            (backup, size)
            for backup, size in our_backups(self.storage, self.config.prefix)
            if not databases or backup.database in databases
        ]
        found.sort(key=lambda item: (item[0].created, item[0].key), reverse=True)
        if not details:
            return [
                BackupInfo(backup, size, expires=self._expiry(backup, {})) for backup, size in found
            ]
        marked = flagged(self.storage, self.config.prefix)
        with ThreadPoolExecutor(max_workers=DETAIL_WORKERS) as pool:
            described = list(pool.map(lambda item: self._described(*item), found))
        return [replace(info, flagged=info.key.rsplit("/", 1)[-1] in marked) for info in described]

    def newest(self, database: str, globals_: bool = False) -> BackupInfo:
        """The newest backup of `database`, or of the cluster's globals."""
        for info in self.backups([database], details=False):
            if info.backup.is_globals == globals_:
                return self._described(info.backup, info.size)
        where = f"s3://{self.config.bucket}/{listing_prefix(self.config.prefix)}"
        what = "the globals" if globals_ else f'database "{database}"'
        raise NotFound(f"no backup of {what} under {where}")

    def newest_unflagged(self, database: str) -> BackupInfo:
        """The newest backup of `database` that its run did not flag (the size check);
        each one passed over is named, with the reason."""
        marked = flagged(self.storage, self.config.prefix)
        skipped = []
        for info in self.backups([database], details=False):
            if info.backup.is_globals:
                continue
            if info.key.rsplit("/", 1)[-1] in marked:
                reason = self.flag_reason(info.key)
                log.warning("passing over %s: flagged by its run (%s)", info.key, reason)
                skipped.append(info.key)
                continue
            return self._described(info.backup, info.size)
        if skipped:
            raise NotFound(
                f'every backup of database "{database}" was flagged by its run; restore one '
                f"anyway with --backup KEY (newest: {skipped[0]})"
            )
        return self.newest(database)

    def is_flagged(self, key: str) -> bool:
        return key.rsplit("/", 1)[-1] in flagged(self.storage, self.config.prefix)

    def flag_reason(self, key: str) -> str:
        return flag_reason(self.storage, self.config.prefix, key)

    def get(self, key: str) -> BackupInfo:
        candidates = [key, f"{listing_prefix(self.config.prefix)}{key}"]
        for candidate in candidates:
            directory = candidate.rsplit("/", 1)[0] if "/" in candidate else ""
            backup = parse_key(candidate, directory)
            if backup is None:
                continue
            head = self.storage.head(candidate)
            if head is not None:
                return self._from_head(backup, head)
        raise NotFound(f"no Moonflower backup with key {key} in bucket {self.config.bucket}")

    def _described(self, backup: BackupKey, size: int) -> BackupInfo:
        head = self.storage.head(backup.key) or {"ContentLength": size}
        return self._from_head(backup, head)

    def _from_head(self, backup: BackupKey, head: dict[str, Any]) -> BackupInfo:
        metadata = head.get("Metadata", {})
        return BackupInfo(
            backup,
            int(head.get("ContentLength", 0)),
            as_pendulum(head.get("ObjectLockRetainUntilDate")),
            self._expiry(backup, metadata),
            metadata.get(SHA256_METADATA_KEY),
            int(metadata[PART_SIZE_METADATA_KEY])
            if metadata.get(PART_SIZE_METADATA_KEY, "").isdigit()
            else None,
            head.get("ChecksumSHA256"),
        )

    def _expiry(self, backup: BackupKey, metadata: dict[str, str]) -> pendulum.DateTime | None:
        if self.config.retention.has_rules:
            return None  # the keep rules decide at each prune; no date can be promised
        if self.config.expires_in is not None:
            return self.config.expires_in.after(backup.created)
        recorded = metadata.get(EXPIRES_METADATA_KEY)
        if recorded:
            parsed = pendulum.parse(recorded)
            if isinstance(parsed, pendulum.DateTime):
                return parsed
        return None
