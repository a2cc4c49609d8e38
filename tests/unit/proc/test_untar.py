"""The base-backup extractor: a tar from the bucket is untrusted input (issue 27, items 1, 3)."""

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from moonflower.proc import untar


def tar_of(
    *members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.USTAR_FORMAT
) -> bytes:
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w:", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return output.getvalue()


def regular(name: str, data: bytes = b"data", mode: int = 0o600) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def other(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, None


def extract(tmp_path: Path, archive: bytes) -> subprocess.CompletedProcess[bytes]:
    target = tmp_path / "data"
    target.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-I", untar.__file__, str(target)],
        input=archive,
        capture_output=True,
        check=False,
        timeout=60,
    )


def test_files_and_directories_come_out_whole(tmp_path: Path) -> None:
    directory = tarfile.TarInfo("base/1")
    directory.type, directory.mode = tarfile.DIRTYPE, 0o700
    content = os.urandom(3 * untar.READ_BYTES + 17)
    archive = tar_of((directory, None), regular("base/1/16384", content), regular("PG_VERSION"))
    result = extract(tmp_path, archive)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "base" / "1" / "16384").read_bytes() == content
    assert (tmp_path / "data" / "PG_VERSION").read_bytes() == b"data"


@pytest.mark.parametrize(
    "member",
    [
        other("pg_wal", tarfile.SYMTYPE, "/etc"),
        other("postgresql.auto.conf", tarfile.SYMTYPE, "../../x"),
        other("global/x", tarfile.LNKTYPE, "etc/passwd"),
        other("mem", tarfile.CHRTYPE),
        other("disk", tarfile.BLKTYPE),
        other("pipe", tarfile.FIFOTYPE),
        regular("/etc/cron.d/planted"),
        regular("../../planted"),
        regular("base/../../planted"),
    ],
    ids=lambda member: member[0].name,
)
def test_anything_but_a_file_or_directory_inside_is_refused(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None]
) -> None:
    result = extract(tmp_path, tar_of(regular("PG_VERSION"), member))
    assert result.returncode == untar.REFUSED, result.stderr
    assert b"refused" in result.stderr
    assert not (tmp_path / "planted").exists()
    assert not any(p.is_symlink() for p in (tmp_path / "data").rglob("*"))


def test_extended_headers_and_a_name_given_twice_are_refused(tmp_path: Path) -> None:
    long_name = regular("base/" + "x" * 150)
    assert extract(tmp_path, tar_of(long_name, fmt=tarfile.PAX_FORMAT)).returncode == 3
    assert extract(tmp_path / "..", tar_of(long_name, fmt=tarfile.GNU_FORMAT)).returncode == 3
    twice = tar_of(regular("PG_VERSION", b"18"), regular("PG_VERSION", b"evil"))
    (tmp_path / "again").mkdir()
    result = extract(tmp_path / "again", twice)
    assert result.returncode == untar.REFUSED
    assert b"twice" in result.stderr


def test_special_bits_are_dropped(tmp_path: Path) -> None:
    directory = tarfile.TarInfo("shared")
    directory.type, directory.mode = tarfile.DIRTYPE, 0o7777
    result = extract(tmp_path, tar_of((directory, None), regular("shared/tool", b"x", 0o7777)))
    assert result.returncode == 0, result.stderr
    for path in (tmp_path / "data" / "shared", tmp_path / "data" / "shared" / "tool"):
        mode = path.stat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWOTH | stat.S_IWGRP)


def test_a_truncated_tar_fails(tmp_path: Path) -> None:
    archive = tar_of(regular("big", os.urandom(100_000)))
    result = extract(tmp_path, archive[:50_000])
    assert result.returncode != 0
    assert b"ends" in result.stderr
