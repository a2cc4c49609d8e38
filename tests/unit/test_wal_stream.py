"""The stream's bookkeeping on a real directory: which files wait, and the spool alarm."""

import os
import threading
from pathlib import Path
from typing import Any

from moonflower.config.loader import load_config
from moonflower.runtime.wal_stream import SPOOL_ALARM, WalStreamer, waiting_files

SEGMENT = 16 * 1024 * 1024


def streamer(spool: Path, published: list[dict[str, Any]]) -> WalStreamer:
    config = load_config(
        {
            "PG_DATABASES": "app",
            "PG_HOST": "127.0.0.1",
            "PG_USER": "u",
            "PG_PASSWORD": "p",
            "S3_ENDPOINT": "http://127.0.0.1:9",
            "S3_BUCKET": "b",
            "BACKUP_SPOOL_DIR": str(spool),
            "WAL_SPOOL_LIMIT": "64 MiB",
        }
    )
    stream = WalStreamer(
        config, None, spool / "pgpass", threading.Event(), on_state=published.append
    )  # type: ignore[arg-type]
    stream.directory.mkdir()
    return stream


def segment(directory: Path, name: str) -> None:
    with (directory / name).open("wb") as handle:
        handle.truncate(SEGMENT)  # sparse: the size is what counts


def test_waiting_files_are_completed_ones_history_first(tmp_path: Path) -> None:
    for name in ("000000020000000000000005", "000000010000000000000004", "00000002.history"):
        segment(tmp_path, name)
    segment(tmp_path, "000000020000000000000006.partial")
    (tmp_path / "junk.tmp").write_text("x")
    assert [path.name for path in waiting_files(tmp_path)] == [
        "000000010000000000000004",
        "00000002.history",
        "000000020000000000000005",
    ]


def test_the_spool_alarm_rises_once_and_clears(tmp_path: Path) -> None:
    published: list[dict[str, Any]] = []
    stream = streamer(tmp_path, published)
    for number in range(4):
        segment(stream.directory, f"0000000100000000000000{number:02X}")
    stream.check_spool()
    stream.publish()
    assert stream.state.problems == []
    segment(stream.directory, "000000010000000000000004")
    stream.check_spool()
    stream.publish()
    stream.check_spool()
    stream.publish()
    assert stream.state.problems == [SPOOL_ALARM]
    assert len(published) == 2  # the second round changed nothing
    for path in list(stream.directory.iterdir())[:3]:
        os.unlink(path)
    stream.check_spool()
    assert stream.state.problems == []
