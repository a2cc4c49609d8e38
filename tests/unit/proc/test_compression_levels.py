"""Which compressor runs, and at which level."""

import shutil
from pathlib import Path

import pytest

from moonflower.config.compression import Compression
from moonflower.proc.codec import compress_stage, decompress_stage, describe, igzip_level
from tests.support.toolpath import path_without

needs = {
    engine: pytest.mark.skipif(shutil.which(engine) is None, reason=f"{engine} is not installed")
    for engine in ("igzip", "pigz")
}


@needs["igzip"]
def test_gzip_prefers_igzip_at_the_level_that_matches_gzip_5() -> None:
    stage = compress_stage(Compression("gzip", None))

    assert stage is not None
    assert list(stage.argv) == ["igzip", "-c", "-1"]
    assert describe(Compression("gzip", None)) == "gzip level 5 (igzip -1)"


@needs["pigz"]
def test_without_igzip_gzip_runs_pigz_at_the_original_images_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_without(tmp_path, "igzip"))

    stage = compress_stage(Compression("gzip", None))

    assert stage is not None
    assert stage.argv[0] == "pigz"
    assert "-5" in stage.argv


def test_with_neither_gzip_runs_gzip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without(tmp_path, "igzip", "pigz"))

    stage = compress_stage(Compression("gzip", 7))
    unzip = decompress_stage("gzip", ".sql.gz")

    assert stage is not None
    assert list(stage.argv) == ["gzip", "-c", "-7"]
    assert unzip is not None
    assert list(unzip.argv) == ["gzip", "-dc"]


@pytest.mark.parametrize(
    ("gzip_level", "expected"), [(1, 1), (4, 1), (5, 1), (6, 2), (7, 2), (8, 3), (9, 3)]
)
def test_gzip_levels_map_onto_igzips_four(gzip_level: int, expected: int) -> None:
    assert igzip_level(gzip_level) == expected


@needs["igzip"]
@pytest.mark.parametrize(("algorithm", "extension"), [("gzip", ".sql.gz"), (None, ".sql.gz.gpg")])
def test_gzip_is_read_back_by_igzip(algorithm: str | None, extension: str) -> None:
    stage = decompress_stage(algorithm, extension)

    assert stage is not None
    assert list(stage.argv) == ["igzip", "-dc"]


def test_zstd_defaults_to_level_3_on_every_core() -> None:
    stage = compress_stage(Compression("zstd", None))

    assert stage is not None
    assert list(stage.argv[:1]) == ["zstd"]
    assert {"-3", "-T0"} <= set(stage.argv)


@pytest.mark.parametrize(("algorithm", "level"), [("zstd", 19), ("zstd", 1)])
def test_a_configured_zstd_level_is_passed_on(algorithm: str, level: int) -> None:
    stage = compress_stage(Compression(algorithm, level))

    assert stage is not None
    assert f"-{level}" in stage.argv


def test_no_compression_has_no_stage() -> None:
    assert compress_stage(Compression("none", None)) is None
