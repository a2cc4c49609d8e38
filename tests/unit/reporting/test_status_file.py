"""The status file keeps each database's latest result; their histories live apart."""

import json
from pathlib import Path

from moonflower.reporting.status_file import HISTORY_LENGTH, StateFile


def entry(database: str, number: int) -> dict[str, object]:
    return {
        "database": database,
        "time": f"2026-11-27T00:{number:02d}:00+00:00",
        "ok": True,
        "size": 1000 + number,
        "seconds": 1.5,
    }


def test_histories_are_kept_apart_and_trimmed(tmp_path: Path) -> None:
    state = StateFile(tmp_path)

    for number in range(HISTORY_LENGTH + 5):
        state.backups_recorded([entry("app", number)], {"s3_retries": 1})

    main = json.loads(state.path.read_text())
    assert main["databases"]["app"]["last_size"] == 1000 + HISTORY_LENGTH + 4
    assert "history" not in main["databases"]["app"]
    assert main["counters"] == {"s3_retries": HISTORY_LENGTH + 5}
    history = state.history()["app"]
    assert len(history) == HISTORY_LENGTH
    assert history[-1]["size"] == 1000 + HISTORY_LENGTH + 4


def test_histories_written_inside_the_state_file_by_earlier_versions_move_out(
    tmp_path: Path,
) -> None:
    state = StateFile(tmp_path)
    old = {
        "databases": {
            "app": {"last_size": 1, "history": [entry("app", 1)]},
            "gone": {"last_size": 2, "history": [entry("gone", 2)]},
        }
    }
    state.path.write_text(json.dumps(old))

    state.backups_recorded([entry("app", 3)], {})

    main = json.loads(state.path.read_text())
    assert all("history" not in record for record in main["databases"].values())
    assert [item["size"] for item in state.history()["app"]] == [1001, 1003]
    assert [item["size"] for item in state.history()["gone"]] == [1002]
