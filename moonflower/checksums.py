"""Checksums of backups: the whole file's SHA-256, and S3's composite SHA-256 of a multipart
object (the SHA-256 of its parts' SHA-256 digests), which can be checked knowing the part size."""

import base64
import hashlib
from collections.abc import Iterable
from pathlib import Path

READ_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def base64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def composite_of(part_digests: Iterable[bytes]) -> str:
    return base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()


def file_composite_sha256(path: Path, part_size: int) -> str:
    digests = []
    with path.open("rb") as handle:
        while True:
            part = hashlib.sha256()
            remaining = part_size
            while remaining:
                chunk = handle.read(min(READ_CHUNK, remaining))
                if not chunk:
                    break
                part.update(chunk)
                remaining -= len(chunk)
            if remaining == part_size:
                break
            digests.append(part.digest())
    return composite_of(digests)


def same_composite(reported: str, computed: str) -> bool:
    """S3 reports `<base64>-<parts>`; some servers leave the part count out."""
    return reported.split("-", 1)[0] == computed
