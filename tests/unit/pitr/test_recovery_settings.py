"""What a restored server never takes from a backup's configuration (issue 27, item 2)."""

from pathlib import Path

import pytest

from moonflower.pitr.recovery_settings import is_unsafe, make_safe, safe_lines


@pytest.mark.parametrize(
    "name",
    [
        "archive_command",
        "restore_command",
        "recovery_end_command",
        "archive_cleanup_command",
        "ssl_passphrase_command",
        "shared_preload_libraries",
        "session_preload_libraries",
        "local_preload_libraries",
        "archive_library",
        "dynamic_library_path",
        "jit_provider",
        "archive_mode",
        "data_directory",
        "hba_file",
        "external_pid_file",
        "include_dir",
        "ARCHIVE_COMMAND",
    ],
)
def test_settings_that_run_or_load_code_are_unsafe(name: str) -> None:
    assert is_unsafe(name)


@pytest.mark.parametrize(
    "line",
    [
        "archive_command = 'touch /tmp/x'",
        "archive_command='touch /tmp/x'",
        "archive_command 'touch /tmp/x'",
        "  \tRecovery_End_Command = 'x'  # comment",
        "include '/etc/other.conf'",
        "shared_preload_libraries = 'evil'",
        "weird = = line'",
        "archive_commandé = 'x'",
    ],
)
def test_unsafe_or_unreadable_lines_are_left_out(line: str) -> None:
    kept, left_out = safe_lines(f"shared_buffers = 128MB\n{line}\n")
    assert kept[0] == "shared_buffers = 128MB"
    assert all(text.startswith("#") or not text for text in kept[1:]), kept
    assert left_out


def test_a_comment_hides_nothing_and_ordinary_settings_stay(tmp_path: Path) -> None:
    text = "# archive_command = 'x'\nwork_mem = '4MB'\n\r\nfoo.bar = 1\n"
    kept, left_out = safe_lines(text)
    assert left_out == []
    assert "\n".join(kept) == text
    (tmp_path / "postgresql.auto.conf").write_text("archive_mode = on\nwork_mem = 1\n")
    assert make_safe(tmp_path) == ["archive_mode"]
    assert "work_mem = 1" in (tmp_path / "postgresql.auto.conf").read_text()
