import pytest

from moonflower.postgres.wal_names import (
    Segment,
    format_lsn,
    is_wal_file,
    parse_lsn,
    segment_for,
    segment_of,
)


def test_lsn_round_trip() -> None:
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert format_lsn(parse_lsn("0/3000028")) == "0/3000028"


@pytest.mark.parametrize("text", ["", "0/", "x/1", "1/2/3", "123456789/0"])
def test_not_an_lsn(text: str) -> None:
    with pytest.raises(ValueError, match="not a WAL position"):
        parse_lsn(text)


def test_segment_names_follow_postgres() -> None:
    assert segment_for(1, parse_lsn("0/3000028")).name == "000000010000000000000003"
    assert segment_for(2, parse_lsn("1/FF000000")).name == "0000000200000001000000FF"
    following = segment_for(2, parse_lsn("1/FF000000")).next()
    assert following.name == "000000020000000200000000"
    assert segment_of(following.name) == following


def test_other_files_are_not_segments() -> None:
    assert segment_of("000000010000000000000003.partial") == Segment(1, 3)
    assert segment_of("0000000100000000000001FF") is None  # past the 256 per log id
    assert segment_of("00000001000000000000000g") is None
    assert is_wal_file("00000002.history")
    assert not is_wal_file("00000002.history.tmp")
    assert not is_wal_file("backup_manifest")
