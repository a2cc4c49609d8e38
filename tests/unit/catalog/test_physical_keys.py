import pendulum

from moonflower.catalog.physical_keys import (
    base_folder,
    base_label,
    parse_wal_key,
    partial_key,
    wal_key,
)
from moonflower.config.compression import Algorithm
from moonflower.proc.codec import encoding_suffix

MOMENT = pendulum.datetime(2026, 11, 26, 14, 3, 7, 123000, tz="UTC")


def test_complete_and_history_keys_round_trip() -> None:
    suffix = encoding_suffix(Algorithm.ZSTD, encrypted=True)
    key = wal_key("nightly", "000000010000000000000003", suffix)
    assert key == "nightly/wal/000000010000000000000003.zst.gpg"
    found = parse_wal_key(key, "nightly")
    assert found is not None
    assert found.name == "000000010000000000000003"
    assert not found.partial
    assert found.suffix == ".zst.gpg"
    history = parse_wal_key(wal_key("", "00000002.history", ".gz"), "")
    assert history is not None
    assert history.name == "00000002.history"


def test_partial_keys_carry_their_push_time() -> None:
    key = partial_key("p", "000000010000000000000003", MOMENT, ".gz")
    assert key == "p/wal/000000010000000000000003.partial.2026-11-26T14:03:07.123Z.gz"
    found = parse_wal_key(key, "p")
    assert found is not None
    assert found.partial_time == MOMENT


def test_foreign_keys_are_not_ours() -> None:
    for key in (
        "p/wal/000000010000000000000003.zip",
        "p/wal/README",
        "p/000000010000000000000003.gz",
        "p/wal/000000010000000000000003.partial.gz",
    ):
        assert parse_wal_key(key, "p") is None


def test_base_keys() -> None:
    folder = base_folder("p", MOMENT)
    assert folder == "p/base/2026-11-26T14:03:07.123Z/"
    assert base_label(folder + "base.tar.zst.gpg", "p") == "2026-11-26T14:03:07.123Z"
    assert base_label(folder + "backup.json", "p") == "2026-11-26T14:03:07.123Z"
    assert base_label(folder + "other.tar", "p") is None
    assert base_label("p/base/yesterday/backup.json", "p") is None
