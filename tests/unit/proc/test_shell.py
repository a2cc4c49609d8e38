"""The pipeline runner against real processes."""

from pathlib import Path

import pytest

from moonflower.core.errors import StageFailed
from moonflower.core.redact import redactor
from moonflower.proc.runner import Stage, capture, child_environment, run


def sh_stage(name: str, script: str) -> Stage:
    return Stage(name, ["/bin/sh", "-c", script])


def test_bytes_flow_through_every_stage(tmp_path: Path) -> None:
    output = tmp_path / "out"
    with output.open("wb") as handle:
        run([sh_stage("produce", "seq 1 100000"), Stage("count", ["wc", "-l"])], output=handle)

    assert output.read_text().strip() == "100000"


def test_a_failing_producer_is_reported_with_its_stderr(tmp_path: Path) -> None:
    with (tmp_path / "out").open("wb") as handle, pytest.raises(StageFailed) as caught:
        run(
            [sh_stage("producer", "echo half; echo 'it broke' >&2; exit 3"), Stage("cat", ["cat"])],
            output=handle,
        )

    assert caught.value.stage == "producer"
    assert caught.value.exit_code == 3
    assert "it broke" in str(caught.value)


def test_a_producer_killed_by_sigpipe_is_a_failure_and_the_consumer_is_blamed(
    tmp_path: Path,
) -> None:
    producer = Stage("yes", ["yes"])
    consumer = sh_stage("consumer", "head -c 10 >/dev/null; echo 'consumer gave up' >&2; exit 0")
    with (tmp_path / "out").open("wb") as handle, pytest.raises(StageFailed) as caught:
        run([producer, consumer], output=handle)

    assert caught.value.stage == "yes"
    assert "signal 13" in str(caught.value)


def test_the_real_cause_wins_over_sigpipe(tmp_path: Path) -> None:
    consumer = sh_stage("compress", "head -c 10 >/dev/null; echo 'disk full' >&2; exit 1")
    with (tmp_path / "out").open("wb") as handle, pytest.raises(StageFailed) as caught:
        run([Stage("yes", ["yes"]), consumer], output=handle)

    assert caught.value.stage == "compress"
    assert "disk full" in str(caught.value)


def test_stderr_of_children_is_masked() -> None:
    redactor.add("hunter2-secret")
    try:
        with pytest.raises(StageFailed) as caught:
            capture(sh_stage("leaky", "echo 'password hunter2-secret rejected' >&2; exit 1"))
    finally:
        redactor.clear()

    assert "hunter2-secret" not in str(caught.value)
    assert "********" in str(caught.value)


def test_missing_program_is_a_stage_failure() -> None:
    with pytest.raises(StageFailed, match="command not found"):
        capture(Stage("ghost", ["/nonexistent/ghost"]))


def test_children_do_not_inherit_our_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PASSWORD", "inherited-secret")

    assert "PG_PASSWORD" not in child_environment()
    assert capture(sh_stage("env", "env")).find("inherited-secret") == -1
