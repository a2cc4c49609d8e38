"""Write-ahead log positions (LSNs) and file names, as PostgreSQL spells them.

A segment file is named by its timeline and position: `TTTTTTTTXXXXXXXXYYYYYYYY`, eight
hex digits each; a timeline's history file is `TTTTTTTT.history`. pg_receivewal writes the
segment in progress as `<segment>.partial`.
"""

import re
from dataclasses import dataclass

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
SEGMENT_NAME = re.compile(r"[0-9A-F]{24}")
HISTORY_NAME = re.compile(r"[0-9A-F]{8}\.history")
PARTIAL_SUFFIX = ".partial"
LSN_TEXT = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_lsn(text: str) -> int:
    """`16/B374D848` as a number; ValueError when it is not one."""
    match = LSN_TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'"{text}" is not a WAL position (LSN), such as 0/3000028')
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True, order=True)
class Segment:
    timeline: int
    number: int
    """The segment's index from the start of the log: LSN // segment size."""
    size: int = DEFAULT_SEGMENT_SIZE

    @property
    def name(self) -> str:
        per_log = 0x100000000 // self.size
        return f"{self.timeline:08X}{self.number // per_log:08X}{self.number % per_log:08X}"

    @property
    def start_lsn(self) -> int:
        return self.number * self.size

    def next(self) -> "Segment":
        return Segment(self.timeline, self.number + 1, self.size)


def segment_of(name: str, size: int = DEFAULT_SEGMENT_SIZE) -> Segment | None:
    """The segment a file name stands for (`.partial` allowed), or None for other files."""
    base = name.removesuffix(PARTIAL_SUFFIX)
    if not SEGMENT_NAME.fullmatch(base):
        return None
    per_log = 0x100000000 // size
    log_id, within = int(base[8:16], 16), int(base[16:24], 16)
    if within >= per_log:
        return None
    return Segment(int(base[:8], 16), log_id * per_log + within, size)


def segment_for(timeline: int, lsn: int, size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
    return Segment(timeline, lsn // size, size)


def is_history(name: str) -> bool:
    return HISTORY_NAME.fullmatch(name) is not None


def is_wal_file(name: str) -> bool:
    """A name Moonflower archives: a segment (complete or partial) or a history file."""
    return segment_of(name) is not None or is_history(name)
