"""What a backup is, told from its content by the readback, for files the real tools made."""

import subprocess
from pathlib import Path

import pytest

from moonflower.core.errors import RestoreError
from moonflower.logical.readback import Format, detect_format
from tests.conftest import SECOND_DATABASE
from tests.support.gpgkeys import KeyPair, gnupg_home, gpg
from tests.support.pgserver import PgServer

SQL = b"--\n-- PostgreSQL database dump\n--\n\nSELECT 1;\n"


def made_by(command: list[str], data: bytes) -> bytes:
    return subprocess.run(command, input=data, capture_output=True, check=True, timeout=60).stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["gzip", "-c"], Format(encrypted=False, compression="gzip")),
        (["zstd", "-c", "-q"], Format(encrypted=False, compression="zstd")),
        (["cat"], Format(encrypted=False, compression="none")),
    ],
)
def test_compressed_and_plain_sql(command: list[str], expected: Format, tmp_path: Path) -> None:
    path = tmp_path / "backup"
    path.write_bytes(made_by(command, SQL))
    assert detect_format(path) == expected


def test_a_custom_format_archive(pg: PgServer, tmp_path: Path) -> None:
    path = tmp_path / "backup.dump"
    subprocess.run(
        [pg.tool("pg_dump"), "-Fc", "-f", str(path), SECOND_DATABASE],
        env=pg.client_env(),
        check=True,
        timeout=60,
    )
    assert detect_format(path) == Format(encrypted=False, compression="none")


def test_symmetric_and_public_key_messages(key_pair: KeyPair, tmp_path: Path) -> None:
    with gnupg_home() as home:
        symmetric = gpg(home, "--symmetric", "--passphrase", "p", "--output", "-", stdin=SQL)
        gpg(home, "--import", stdin=key_pair.public_armored)
        to_key = gpg(
            home,
            "--encrypt",
            "--trust-model",
            "always",
            "--recipient",
            key_pair.fingerprint,
            "--output",
            "-",
            stdin=SQL,
        )
    for data, expected in (
        (symmetric, Format(encrypted=True, symmetric=True)),
        (to_key, Format(encrypted=True, symmetric=False)),
    ):
        path = tmp_path / "backup.gpg"
        path.write_bytes(data)
        assert detect_format(path) == expected


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 a zip file, not a backup"])
def test_anything_else_is_refused_naming_the_step(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "backup"
    path.write_bytes(content)
    with pytest.raises(RestoreError, match=r"^inspect: "):
        detect_format(path)
