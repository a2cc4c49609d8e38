"""BACKUP_COMPRESSION and BACKUP_COMPRESSION_LEVEL as settings: which algorithm, at which
level. What runs to compress is the codec's (`proc/codec.py`)."""

from dataclasses import dataclass
from enum import StrEnum


class Algorithm(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


LEVELS = {"gzip": (1, 9, 5), "zstd": (1, 19, 3)}
"""Lowest, highest and default level of each algorithm (gzip's scale for every gzip engine)."""


@dataclass(frozen=True)
class Compression:
    algorithm: Algorithm = Algorithm.GZIP
    level: int | None = None

    @property
    def effective_level(self) -> int | None:
        if self.algorithm not in LEVELS:
            return None
        return self.level if self.level is not None else LEVELS[self.algorithm][2]
