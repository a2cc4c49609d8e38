"""The one codec: how bytes become a stored object and back. Compression (gzip, zstd or
none), then encryption (gpg), joined by OS pipes; the suffix of a stored name and the first
bytes of an object both say which.

gzip is made by the fastest engine installed: ISA-L's `igzip` (about a tenth of gzip's CPU,
and on SQL dumps no larger than `gzip -5`), then `pigz`, then `gzip`. All three write the
same standard format that any `gzip -d` reads; the fastest of them also reads it back.
"""

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from moonflower.config.compression import Algorithm, Compression
from moonflower.core.errors import DumpError, RestoreError
from moonflower.proc import runner
from moonflower.proc.gpg import Decryption, Encryption
from moonflower.proc.openpgp import SESSION_KEY_TAGS, SYMMETRIC_SESSION_KEY_TAG, packet_tag
from moonflower.proc.runner import Stage

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


GZIP_ENGINES = ("igzip", "pigz", "gzip")
"""Fastest first."""


def gzip_engine() -> str:
    """The fastest gzip engine on PATH (`gzip` when none is, so the error names it)."""
    return next((engine for engine in GZIP_ENGINES if shutil.which(engine)), "gzip")


def igzip_level(gzip_level: int) -> int:
    """igzip has levels 0-3. Its level 1 is smaller than gzip -5 on SQL dumps at a tenth of
    the CPU, so gzip levels 1-5 map to it; 6-7 to 2 and 8-9 to 3. Level 0 is never used: it
    saves little CPU for a file half as large again."""
    return 1 if gzip_level <= 5 else 2 if gzip_level <= 7 else 3


SUFFIXES = {Algorithm.GZIP: ".gz", Algorithm.ZSTD: ".zst", Algorithm.NONE: ""}
"""What each compression adds to a stored object's name; ENCRYPTED_SUFFIX follows it when
the object is encrypted."""
ENCRYPTED_SUFFIX = ".gpg"
SQL_SUFFIX = ".sql"


def encoding_suffix(algorithm: Algorithm, encrypted: bool) -> str:
    """`.gz.gpg`, `.zst`, ...: how a stored name says it was encoded."""
    return SUFFIXES[algorithm] + (ENCRYPTED_SUFFIX if encrypted else "")


def sql_extension(compression: Compression) -> str:
    """The extension of a plain-format dump: `.sql.gz`, `.sql.zst` or `.sql`."""
    return SQL_SUFFIX + SUFFIXES[compression.algorithm]


def stored_compression(suffix: str) -> str:
    """The compression a stored name's suffix says Moonflower used."""
    for algorithm in (Algorithm.ZSTD, Algorithm.GZIP):
        if SUFFIXES[algorithm] in suffix:
            return algorithm
    return Algorithm.NONE


def compress_stage(compression: Compression) -> Stage | None:
    """The compressing pipeline stage (None for no compression)."""
    effective = compression.effective_level
    level = f"-{effective}"
    if compression.algorithm == Algorithm.GZIP:
        engine = gzip_engine()
        if engine == "igzip":
            return Stage(engine, [engine, "-c", f"-{igzip_level(effective or 5)}"])
        if engine == "pigz":
            return Stage(engine, [engine, "-c", level, "-p", str(os.cpu_count() or 1)])
        return Stage(engine, [engine, "-c", level])
    if compression.algorithm == Algorithm.ZSTD:
        return Stage("zstd", ["zstd", "-c", "-q", level, "-T0"])
    return None


def describe(compression: Compression) -> str:
    """What compresses, for the log: `gzip level 5 (igzip -1)`."""
    stage = compress_stage(compression)
    if stage is None:
        return "no compression"
    flags = " ".join(arg for arg in stage.argv[1:] if arg.startswith("-") and arg != "-c")
    return f"{compression.algorithm} level {compression.effective_level} ({stage.name} {flags})"


def check_header(compression: Compression, path: Path) -> None:
    """The artifact must start the way its format starts."""
    with path.open("rb") as handle:
        head = handle.read(4)
    expected = {Algorithm.GZIP: GZIP_MAGIC, Algorithm.ZSTD: ZSTD_MAGIC}.get(compression.algorithm)
    if expected is not None and not head.startswith(expected):
        raise DumpError(f"the compressed dump does not start with a {compression.algorithm} header")


def sniff(head: bytes) -> str | None:
    """The compression a file's first bytes show: "gzip", "zstd", or None."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def decompress_stage(algorithm: str | None, extension: str) -> Stage | None:
    """A stage turning the data back into SQL.

    `algorithm` None means unknown (inside an OpenPGP message): the key's extension says
    what Moonflower put there (`.sql.gz.gpg`, `.sql.zst.gpg`); for anything else (the old
    image's `.sql.gpg`) `zstd -dcf`, which reads gzip, zstd and plain text alike.
    """
    if algorithm == Algorithm.NONE:
        return None
    named = stored_compression(extension) if algorithm is None else algorithm
    if named == Algorithm.GZIP:
        return gunzip_stage()
    if named == Algorithm.ZSTD:
        return Stage("zstd", ["zstd", "-dc", "-q"])
    if shutil.which("zstd"):
        return Stage("zstd", ["zstd", "-dcf", "-q"])
    return Stage("gzip", ["gzip", "-dcf"])


def gunzip_stage() -> Stage:
    """Decompress gzip with the fastest engine (igzip reads it about four times as fast as
    gzip)."""
    engine = gzip_engine()
    return Stage(engine, [engine, "-dc"])


COPY = Stage("cat", ["cat"])


@contextlib.contextmanager
def encoding_stages(
    compression: Compression, encryption: Encryption | None
) -> Iterator[list[Stage]]:
    """[compressor] | [gpg]: what turns the raw bytes into the stored object."""
    stages = [stage for stage in (compress_stage(compression),) if stage is not None]
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
