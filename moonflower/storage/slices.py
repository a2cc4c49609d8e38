"""A read-only window on part of a file: an upload part streamed from the spool file, not
buffered in memory."""

import io
from pathlib import Path
from typing import Any


class FileSlice(io.RawIOBase):
    """A read-only, seekable window on part of a file, so a part is streamed, not buffered."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        super().__init__()
        self._handle = path.open("rb", buffering=0)
        self._start = start
        self._length = length
        self._position = 0
        self._handle.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._length - self._position)
        if wanted <= 0:
            return 0
        with memoryview(buffer) as view:
            count = self._handle.readinto(view.cast("B")[:wanted]) or 0
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + offset))
        self._handle.seek(self._start + self._position)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._handle.close()
        super().close()
