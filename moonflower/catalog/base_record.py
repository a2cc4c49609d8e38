"""backup.json: what a restore needs to know about a base backup before it downloads it."""

import json
from dataclasses import dataclass, fields

import pendulum


@dataclass(frozen=True)
class BaseBackupRecord:
    label: str
    key: str
    start_lsn: str
    stop_lsn: str
    timeline: int
    start_time: str
    stop_time: str
    """When pg_basebackup ended: the earliest moment a recovery from it can stop at."""
    server_version: str
    server_major: int
    segment_size: int
    size: int
    sha256: str
    compression: str
    encrypted: bool
    parent: str | None = None
    """For an incremental base backup: the label of the one it builds on."""
    chain_length: int = 1
    """How many base backups a restore from this one combines (1: a full backup)."""
    manifest_key: str | None = None
    """Its backup manifest, stored beside it for the next incremental backup."""
    manifest_sha256: str | None = None
    """The SHA-256 of the stored manifest object, checked when it is downloaded."""
    system_identifier: str | None = None
    """The cluster's system identifier (pg_control_system()): WAL of another is refused."""

    @classmethod
    def from_json(cls, text: bytes) -> "BaseBackupRecord":
        """Fields added later (the incremental ones) may be missing from older records."""
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        optional = {
            "parent",
            "chain_length",
            "manifest_key",
            "manifest_sha256",
            "system_identifier",
        }
        return cls(
            **{
                field.name: document[field.name]
                for field in fields(cls)
                if field.name in document or field.name not in optional
            }
        )

    @property
    def stopped(self) -> pendulum.DateTime:
        moment = pendulum.parse(self.stop_time)
        assert isinstance(moment, pendulum.DateTime)
        return moment

    @property
    def incremental(self) -> bool:
        return self.parent is not None
