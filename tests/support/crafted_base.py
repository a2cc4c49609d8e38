"""Base backups rewritten as an attacker with write access to the bucket would: a real one
taken by `moonflower basebackup` (uncompressed, unencrypted), its tar rebuilt with other
members, and its backup.json changed to match (checksum, size, any field asked for)."""

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.s3server import S3Server

Member = tuple[tarfile.TarInfo, bytes | None]


@dataclass(frozen=True)
class StoredBase:
    """A base backup as it lies in the bucket."""

    tar: bytes
    record: dict[str, Any]

    @classmethod
    def read(cls, s3: S3Server, bucket: str) -> "StoredBase":
        client = s3.client()
        description = next(k for k in s3.keys(bucket) if k.endswith("/backup.json"))
        record = json.loads(client.get_object(Bucket=bucket, Key=description)["Body"].read())
        assert record["key"].endswith("/base.tar"), "take it with BACKUP_COMPRESSION=none"
        tar = client.get_object(Bucket=bucket, Key=record["key"])["Body"].read()
        return cls(tar, record)

    def members(self) -> list[Member]:
        with tarfile.open(fileobj=io.BytesIO(self.tar), mode="r:") as archive:
            return [
                (member, archive.extractfile(member).read() if member.isreg() else None)  # type: ignore[union-attr]
                for member in archive.getmembers()
            ]


def build_tar(members: list[Member]) -> bytes:
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w:", format=tarfile.USTAR_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return output.getvalue()


def regular(name: str, data: bytes, mode: int = 0o600) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name: str, kind: bytes, link: str = "", mode: int = 0o777) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 1  # /dev/mem
    return info, None


def plant(
    s3: S3Server,
    bucket: str,
    original: StoredBase,
    change: Callable[[list[Member]], list[Member]],
    label: str | None = None,
    **record: Any,
) -> dict[str, Any]:
    """Store a rewritten copy of `original` in `bucket` (under its label, or `label`)."""
    import hashlib

    tar = build_tar(change(original.members()))
    described = dict(original.record)
    if label is not None:
        described["key"] = described["key"].replace(described["label"], label)
        described["label"] = label
    described.update(sha256=hashlib.sha256(tar).hexdigest(), size=len(tar), **record)
    client = s3.client()
    client.put_object(Bucket=bucket, Key=described["key"], Body=tar)
    folder = described["key"].rsplit("/", 1)[0]
    client.put_object(
        Bucket=bucket, Key=f"{folder}/backup.json", Body=json.dumps(described).encode()
    )
    return described


def without(prefix: str) -> Callable[[list[Member]], list[Member]]:
    return lambda members: [m for m in members if not m[0].name.startswith(prefix)]


def adding(*extra: Member, dropping: str | None = None) -> Callable[[list[Member]], list[Member]]:
    def change(members: list[Member]) -> list[Member]:
        kept = members if dropping is None else without(dropping)(members)
        return [*kept, *extra]

    return change


def replacing(name: str, data: bytes) -> Callable[[list[Member]], list[Member]]:
    def change(members: list[Member]) -> list[Member]:
        changed = []
        for info, content in members:
            if info.name == name:
                info.size, content = len(data), data
            changed.append((info, content))
        return changed

    return change


def segment_header(identifier: int) -> bytes:
    """The first 64 bytes of a WAL segment as PostgreSQL writes them on little-endian hosts:
    a long page header (xlp_info with XLP_LONG_HEADER) with the system identifier, a 16 MiB
    segment size and 8 KiB blocks."""
    header = bytearray(64)
    header[0:2] = (0xD118).to_bytes(2, "little")
    header[2:4] = (0x0002).to_bytes(2, "little")
    header[24:32] = identifier.to_bytes(8, "little")
    header[32:36] = (16 << 20).to_bytes(4, "little")
    header[36:40] = (8 << 10).to_bytes(4, "little")
    return bytes(header)
