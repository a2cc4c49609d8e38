"""Which compressor runs, and at which level."""

import shutil

import pytest

from moonflower.pipeline.compression import Compression


@pytest.mark.skipif(shutil.which("pigz") is None, reason="pigz is not installed")
def test_gzip_defaults_to_the_original_images_level_and_uses_pigz() -> None:
    stage = Compression("gzip", None).stage()

    assert stage is not None
    assert stage.argv[0] == "pigz"
    assert "-5" in stage.argv


def test_zstd_defaults_to_level_3_on_every_core() -> None:
    stage = Compression("zstd", None).stage()

    assert stage is not None
    assert list(stage.argv[:1]) == ["zstd"]
    assert {"-3", "-T0"} <= set(stage.argv)


@pytest.mark.parametrize(("algorithm", "level"), [("gzip", 9), ("zstd", 19), ("gzip", 1)])
def test_a_configured_level_is_passed_on(algorithm: str, level: int) -> None:
    stage = Compression(algorithm, level).stage()

    assert stage is not None
    assert f"-{level}" in stage.argv


def test_no_compression_has_no_stage() -> None:
    assert Compression("none", None).stage() is None
