"""The window on a spool file that a part is uploaded and hashed from."""

import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moonflower.storage.checksums import (
    HASH_BUFFER_BYTES,
    CompositeSha256,
    composite_of,
    file_composite_sha256,
    part_sha256,
)
from moonflower.storage.slices import FileSlice

CONTENT = bytes(range(256)) * ((3 * HASH_BUFFER_BYTES) // 256 + 7)


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, len(CONTENT)),
    length=st.integers(0, len(CONTENT)),
    chunk=st.sampled_from([1, 7, 8192, HASH_BUFFER_BYTES + 3, 2**20]),
)
def test_a_slice_reads_exactly_its_window(
    tmp_path_factory: pytest.TempPathFactory, start: int, length: int, chunk: int
) -> None:
    path = spool(tmp_path_factory)
    expected = CONTENT[start : start + length]

    with FileSlice(path, start, len(expected)) as part:
        pieces = []
        while piece := part.read(chunk):
            pieces.append(piece)

    assert b"".join(pieces) == expected
    assert part_sha256(path, start, len(expected)) == hashlib.sha256(expected).digest()


def test_a_slice_seeks_within_its_window_only(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(CONTENT)

    with FileSlice(path, 100, 50) as part:
        assert part.seek(0, io.SEEK_END) == 50
        assert part.read(10) == b""
        assert part.seek(-10, io.SEEK_END) == 40
        assert part.read() == CONTENT[140:150]
        assert part.seek(500) == 50
        assert part.seek(-5) == 0
        assert part.read(3) == CONTENT[100:103]
        assert part.tell() == 3


def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.getbasetemp()
    path = Path(directory) / "spool"
    if not path.exists():
        path.write_bytes(CONTENT)
    return path


@pytest.mark.parametrize("size", [0, 1, 4096, 4096 * 3, 4096 * 3 + 1])
def test_composite_checksum_hashes_each_part_then_the_digests(tmp_path: Path, size: int) -> None:
    path = tmp_path / "spool"
    path.write_bytes(CONTENT[:size])
    parts = [CONTENT[start : min(start + 4096, size)] for start in range(0, size, 4096)]

    expected = composite_of(hashlib.sha256(part).digest() for part in parts)

    assert file_composite_sha256(path, 4096) == expected


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=4096 * 4),
    cuts=st.lists(st.integers(min_value=1, max_value=4096 * 4), max_size=12),
)
def test_the_composite_computed_while_streaming_matches_the_file_one(
    size: int, cuts: list[int]
) -> None:
    """However the download is cut into chunks, the running composite is the file's."""
    data = CONTENT[:size]
    running = CompositeSha256(4096)
    start = 0
    for end in sorted({cut for cut in cuts if cut < size} | {size}):
        running.update(data[start:end])
        start = end
    parts = [data[offset : offset + 4096] for offset in range(0, size, 4096)]

    assert running.value() == composite_of(hashlib.sha256(part).digest() for part in parts)
