"""Compression of the dump: gzip, zstd, or none; and the way back.

gzip is made by the fastest engine installed: ISA-L's `igzip` (about a tenth of gzip's CPU,
and on SQL dumps no larger than `gzip -5`), then `pigz`, then `gzip`. All three write the
same standard format that any `gzip -d` reads; the fastest of them also reads it back.
"""

import os
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from moonflower.core.errors import DumpError
from moonflower.proc.runner import Stage

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Algorithm(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


LEVELS = {"gzip": (1, 9, 5), "zstd": (1, 19, 3)}
"""Lowest, highest and default level of each algorithm (gzip's scale for every gzip engine)."""
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
            engine = gzip_engine()
            if engine == "igzip":
                return Stage(engine, [engine, "-c", f"-{igzip_level(self.effective_level or 5)}"])
            if engine == "pigz":
                return Stage(engine, [engine, "-c", level, "-p", str(os.cpu_count() or 1)])
            return Stage(engine, [engine, "-c", level])
        if self.algorithm == Algorithm.ZSTD:
            return Stage("zstd", ["zstd", "-c", "-q", level, "-T0"])
        return None

    def describe(self) -> str:
        """What compresses, for the log: `gzip level 5 (igzip -1)`."""
        stage = self.stage()
        if stage is None:
            return "no compression"
        flags = " ".join(arg for arg in stage.argv[1:] if arg.startswith("-") and arg != "-c")
        return f"{self.algorithm} level {self.effective_level} ({stage.name} {flags})"

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

    `algorithm` None means unknown (inside an OpenPGP message): the key's extension says
    what Moonflower put there (`.sql.gz.gpg`, `.sql.zst.gpg`); for anything else (the old
    image's `.sql.gpg`) `zstd -dcf`, which reads gzip, zstd and plain text alike.
    """
    if algorithm == Algorithm.NONE:
        return None
    if algorithm == Algorithm.GZIP or (algorithm is None and ".sql.gz" in extension):
        return gunzip_stage()
    if algorithm == Algorithm.ZSTD or (algorithm is None and ".sql.zst" in extension):
        return Stage("zstd", ["zstd", "-dc", "-q"])
    if shutil.which("zstd"):
        return Stage("zstd", ["zstd", "-dcf", "-q"])
    return Stage("gzip", ["gzip", "-dcf"])


def gunzip_stage() -> Stage:
    """Decompress gzip with the fastest engine (igzip reads it about four times as fast as
    gzip)."""
    engine = gzip_engine()
    return Stage(engine, [engine, "-dc"])
