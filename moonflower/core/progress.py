"""Progress of long steps: a rich bar on a terminal, a log line every few seconds elsewhere."""

import sys
import time

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from moonflower.core.logs import log, stderr_console

LOG_EVERY_SECONDS = 10.0


class StepProgress:
    """Reports `done` of `total` bytes for one named step."""

    def __init__(self, step: str, total: int, interactive: bool | None = None) -> None:
        self.step = step
        self.total = max(total, 1)
        self.done = 0
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._last_log = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> "StepProgress":
        if self.interactive:
            self._bar = Progress(
                TextColumn(self.step),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.step, total=self.total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, amount: int) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            log.info(
                "%s: %d%% (%d of %d bytes)",
                self.step,
                100 * self.done // self.total,
                self.done,
                self.total,
            )


def stdin_position(pid: int) -> int | None:
    """How far a process has read its standard input (a file), from /proc."""
    try:
        with open(f"/proc/{pid}/fdinfo/0", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("pos:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None
