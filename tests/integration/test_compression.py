"""Every compression, with and without encryption, comes back identical."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NASTY_DATABASE
from tests.support.pgserver import COMMAND_TIMEOUT_SECONDS, PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.toolpath import path_without

PASSPHRASE = "compress then encrypt"
EXTENSIONS = {"gzip": ".sql.gz", "zstd": ".sql.zst", "none": ".sql"}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("algorithm", ["gzip", "zstd", "none"])
def test_each_compression_round_trips_through_restore(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    algorithm: str,
    encrypted: bool,
) -> None:
    backup_env["BACKUP_COMPRESSION"] = algorithm
    if encrypted:
        backup_env["ENCRYPTION_PASSPHRASE"] = PASSPHRASE
    target = f"mf_{algorithm}_{'enc' if encrypted else 'plain'}"

    backed_up = run_moonflower(env=backup_env)
    restored = run_moonflower("restore", NASTY_DATABASE, "--into", target, env=backup_env)

    assert backed_up.returncode == 0, backed_up.stderr
    [key] = s3.keys(bucket)
    assert key.endswith(EXTENSIONS[algorithm] + (".gpg" if encrypted else ""))
    assert restored.returncode == 0, restored.stderr
    assert "/s of backup)" in restored.stderr  # the restore reports its throughput
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


@pytest.mark.parametrize(("algorithm", "tool"), [("gzip", "gzip"), ("zstd", "zstd")])
def test_stock_decompressors_read_the_output(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    tmp_path: Path,
    algorithm: str,
    tool: str,
) -> None:
    backup_env.update(BACKUP_COMPRESSION=algorithm, BACKUP_COMPRESSION_LEVEL="1")
    assert run_moonflower(env=backup_env).returncode == 0
    [key] = s3.keys(bucket)
    downloaded = tmp_path / "backup"
    s3.client().download_file(bucket, key, str(downloaded))

    sql = subprocess.run(
        [tool, "-dc", str(downloaded)],
        capture_output=True,
        check=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    ).stdout

    assert b"PostgreSQL database dump complete" in sql


GZIP_ENGINES = ["igzip", "pigz", "gzip"]
"""Fastest first: Moonflower takes the first one installed."""


@pytest.mark.parametrize(
    "engine",
    [
        pytest.param(
            engine,
            marks=pytest.mark.skipif(shutil.which(engine) is None, reason=f"no {engine} here"),
        )
        for engine in GZIP_ENGINES
    ],
)
def test_each_gzip_engine_writes_and_reads_standard_gzip(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    tmp_path: Path,
    engine: str,
) -> None:
    """With the faster engines hidden from PATH, `engine` compresses (the log says so), stock
    `gzip -dc` reads the object, and restore (decompressing with the same engine) gives the
    database back."""
    faster = GZIP_ENGINES[: GZIP_ENGINES.index(engine)]
    env = {**backup_env, "PATH": path_without(tmp_path / "bin", *faster)}
    target = f"mf_engine_{engine}"

    backed_up = run_moonflower(env=env)
    restored = run_moonflower("restore", NASTY_DATABASE, "--into", target, env=env)

    assert backed_up.returncode == 0, backed_up.stderr
    assert f"compression: gzip level 5 ({engine} -" in backed_up.stderr
    [key] = s3.keys(bucket)
    downloaded = tmp_path / "backup.sql.gz"
    s3.client().download_file(bucket, key, str(downloaded))
    sql = subprocess.run(
        ["gzip", "-dc", str(downloaded)],
        capture_output=True,
        check=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    ).stdout
    assert b"PostgreSQL database dump complete" in sql
    assert restored.returncode == 0, restored.stderr
    assert "/s of backup)" in restored.stderr  # the restore reports its throughput
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)
