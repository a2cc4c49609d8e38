"""Compression of the dump: gzip (pigz when installed), zstd, or none; and the way back."""

import os
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from moonflower.errors import DumpError
from moonflower.pipeline.runner import Stage

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Algorithm(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


LEVELS = {"gzip": (1, 9, 5), "zstd": (1, 19, 3)}
"""Lowest, highest and default level of each algorithm."""
EXTENSIONS = {"gzip": ".sql.gz", "zstd": ".sql.zst", "none": ".sql"}


@dataclass(frozen=True)
class Compression:
    algorithm: Algorithm = Algorithm.GZIP
    level: int | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.algorithm]

    @property
    def effective_level(self) -> int | None:
        if self.algorithm not in LEVELS:
            return None
        return self.level if self.level is not None else LEVELS[self.algorithm][2]

    def stage(self) -> Stage | None:
        """The compressing pipeline stage (None for no compression)."""
        level = f"-{self.effective_level}"
        if self.algorithm == Algorithm.GZIP:
            if shutil.which("pigz"):
                return Stage("pigz", ["pigz", "-c", level, "-p", str(os.cpu_count() or 1)])
            return Stage("gzip", ["gzip", "-c", level])
        if self.algorithm == Algorithm.ZSTD:
            return Stage("zstd", ["zstd", "-c", "-q", level, "-T0"])
        return None

    def check(self, path: Path) -> None:
        """The artifact must start the way this format starts."""
        with path.open("rb") as handle:
            head = handle.read(4)
        expected = {Algorithm.GZIP: GZIP_MAGIC, Algorithm.ZSTD: ZSTD_MAGIC}.get(self.algorithm)
        if expected is not None and not head.startswith(expected):
            raise DumpError(f"the compressed dump does not start with a {self.algorithm} header")


def sniff(head: bytes) -> str | None:
    """The compression a file's first bytes show: "gzip", "zstd", or None."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def decompress_stage(algorithm: str | None, extension: str) -> Stage | None:
    """A stage turning the data back into SQL.

    `algorithm` None means unknown (inside an OpenPGP message): zstd -dcf reads gzip, zstd and
    plain text alike; without zstd, the key's extension decides.
    """
    if algorithm == Algorithm.GZIP:
        return Stage("gzip", ["gzip", "-dc"])
    if algorithm == Algorithm.ZSTD:
        return Stage("zstd", ["zstd", "-dc", "-q"])
    if algorithm == Algorithm.NONE:
        return None
    if shutil.which("zstd"):
        return Stage("zstd", ["zstd", "-dcf", "-q"])
    if ".zst" in extension:
        return Stage("zstd", ["zstd", "-dc", "-q"])
    return Stage("gzip", ["gzip", "-dcf"])
