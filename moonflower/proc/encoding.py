"""Files in and out of their stored form: compressed, then encrypted, and back. Used for
physical backups (base backups and WAL files), whose bytes travel through OS pipes only."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

from moonflower.core.errors import RestoreError
from moonflower.proc import runner
from moonflower.proc.compression import Compression, decompress_stage, sniff
from moonflower.proc.gpg import Decryption, Encryption
from moonflower.proc.openpgp import (
    SESSION_KEY_TAGS,
    SYMMETRIC_SESSION_KEY_TAG,
    packet_tag,
)
from moonflower.proc.runner import Stage

COPY = Stage("cat", ["cat"])


@contextlib.contextmanager
def encoding_stages(
    compression: Compression, encryption: Encryption | None
) -> Iterator[list[Stage]]:
    """[compressor] | [gpg]: what turns the raw bytes into the stored object."""
    stages = [stage for stage in (compression.stage(),) if stage is not None]
    if encryption is None:
        yield stages
        return
    with encryption.stage() as gpg:
        yield [*stages, gpg]


def encode_file(
    source: Path,
    target: Path,
    compression: Compression,
    encryption: Encryption | None,
) -> None:
    """Write `source`'s stored form to `target` (a plain copy when nothing encodes)."""
    with (
        encoding_stages(compression, encryption) as stages,
        source.open("rb") as reader,
        target.open("wb") as writer,
    ):
        runner.run(stages or [COPY], output=writer, source=reader)


def stored_compression(suffix: str) -> str:
    """The compression a stored name's suffix says Moonflower used."""
    if ".zst" in suffix:
        return "zstd"
    if ".gz" in suffix:
        return "gzip"
    return "none"


HEAD_BYTES = 16
"""Enough of the start of an object to tell its compression and encryption."""


@contextlib.contextmanager
def decoding_stages(
    path: Path, suffix: str, decryption: Decryption, what: str
) -> Iterator[list[Stage]]:
    """[gpg --decrypt] | [decompressor]: from the stored object back to the raw bytes. The
    content decides about encryption (a plain object where encryption is expected is the
    caller's to refuse); inside an OpenPGP message the name's suffix tells the compression."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    with decoding_stages_for(head, suffix, decryption, what) as stages:
        yield stages


@contextlib.contextmanager
def decoding_stages_for(
    head: bytes, suffix: str, decryption: Decryption, what: str
) -> Iterator[list[Stage]]:
    """decoding_stages for content whose first HEAD_BYTES bytes are `head`."""
    if not head:
        raise RestoreError("inspect", f"{what} is empty")
    with contextlib.ExitStack() as stack:
        stages: list[Stage] = []
        compression = sniff(head)
        tag = packet_tag(head[0]) if compression is None else None
        if tag in SESSION_KEY_TAGS:
            symmetric = tag == SYMMETRIC_SESSION_KEY_TAG
            stages.append(stack.enter_context(decryption.stage(symmetric, what)))
            compression = stored_compression(suffix)
        decompress = decompress_stage(compression or "none", "")
        if decompress is not None:
            stages.append(decompress)
        yield stages or [COPY]


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return starts_encrypted(handle.read(1))


def starts_encrypted(head: bytes) -> bool:
    tag = packet_tag(head[0]) if head else None
    return tag in SESSION_KEY_TAGS
