"""Checksums of backups: the whole file's SHA-256, and S3's composite SHA-256 of a multipart
object (the SHA-256 of its parts' SHA-256 digests), which can be checked knowing the part size."""

import base64
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from moonflower.storage.objects import SHA256_METADATA_KEY

HASH_BUFFER_BYTES = 256 * 1024


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def composite_of(part_digests: Iterable[bytes]) -> str:
    return base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()


def part_sha256(path: Path, start: int, length: int) -> bytes:
    """SHA-256 of `length` bytes of a file from `start`, read through one reused buffer (no
    allocation per chunk, so memory stays flat however large the file grows)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BUFFER_BYTES)
    remaining = length
    with path.open("rb", buffering=0) as handle, memoryview(buffer) as view:
        handle.seek(start)
        while remaining:
            count = handle.readinto(view[: min(remaining, len(buffer))])
            if not count:
                break
            digest.update(view[:count])
            remaining -= count
    return digest.digest()


def file_composite_sha256(path: Path, part_size: int) -> str:
    size = path.stat().st_size
    return composite_of(
        part_sha256(path, start, min(part_size, size - start))
        for start in range(0, size, part_size)
    )


class CompositeSha256:
    """S3's composite SHA-256 of a stream cut into `part_size`-byte parts, computed as the
    bytes pass (chunks need not line up with the parts)."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._parts: list[bytes] = []
        self._part = hashlib.sha256()
        self._in_part = 0

    def update(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            taken = view[: self.part_size - self._in_part]
            self._part.update(taken)
            self._in_part += len(taken)
            view = view[len(taken) :]
            if self._in_part == self.part_size:
                self._parts.append(self._part.digest())
                self._part = hashlib.sha256()
                self._in_part = 0

    def value(self) -> str:
        last = [self._part.digest()] if self._in_part else []
        return composite_of([*self._parts, *last])


def same_composite(reported: str, computed: str) -> bool:
    """S3 reports `<base64>-<parts>`; some servers leave the part count out."""
    return reported.split("-", 1)[0] == computed


def same_whole(head: dict[str, Any], size: int, digest: str) -> bool:
    """A single-request upload: its size and the SHA-256 Moonflower put in its metadata."""
    stored_digest = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
    return int(head.get("ContentLength", -1)) == size and stored_digest == digest


def same_parts(head: dict[str, Any], size: int, composite: str) -> bool:
    """A multipart upload: its size and S3's own composite SHA-256 of the parts."""
    reported = str(head.get("ChecksumSHA256") or "")
    return int(head.get("ContentLength", -1)) == size and same_composite(reported, composite)
