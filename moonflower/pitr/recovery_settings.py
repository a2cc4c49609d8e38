"""The server settings a base backup carries, made safe before a restored directory starts.

A base backup holds the source's `postgresql.auto.conf` (and `postgresql.conf` when it lives
in the data directory). Whoever can write to the bucket can put anything there, so before
the directory is used, every setting that runs a command, loads code, names a file outside
the data directory or turns archiving on is left out, and so is every `include`: none of
them may come from a backup. Lines that do not read as `name = value` are left out too.
"""

import os
import re
from pathlib import Path

from moonflower.core.errors import RestoreError
from moonflower.core.logs import log

CONFIGURATION_FILES = ("postgresql.auto.conf", "postgresql.conf")
UNSAFE_SUFFIXES = ("_command", "_library", "_libraries")
UNSAFE_NAMES = frozenset(
    {
        "dynamic_library_path",
        "jit_provider",
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
        "archive_mode",
        "include",
        "include_if_exists",
        "include_dir",
    }
)
SPACE = "[ \t\r\f]"
"""What the server's configuration lexer takes for white space: lines end at \\n only."""
IDENTIFIER = "[A-Za-z_][A-Za-z0-9_]*"
VALUE = r"(?:'(?:[^'\\\n]|\\.|'')*'|[A-Za-z0-9_.:/+-]+)"
SETTING = re.compile(
    rf"^{SPACE}*({IDENTIFIER}(?:\.{IDENTIFIER})?){SPACE}*=?{SPACE}*{VALUE}{SPACE}*(?:#.*)?$"
)
"""One `name = value` line as the server's lexer reads it; anything else is left out."""
BLANK_OR_COMMENT = re.compile(rf"^{SPACE}*(#[^\n]*)?$")
LEFT_OUT = "# moonflower restore-cluster left out {what} from the backup: {why}"
SIZE_LIMIT = 1024 * 1024
TRIAL_OVERRIDES = (
    "shared_preload_libraries=",
    "session_preload_libraries=",
    "local_preload_libraries=",
    "archive_mode=off",
    "archive_command=",
    "archive_library=",
    "archive_cleanup_command=",
    "recovery_end_command=",
    "ssl=off",
    "logging_collector=off",
    "external_pid_file=",
)
"""Given on the trial server's command line as well, which wins over both files."""


ARCHIVING = frozenset({"archive_mode", "archive_command", "archive_library"})
"""Kept with `restore-cluster --keep-archiving`: the operator's word that the copy is to
archive where its source did (a new primary)."""


def is_unsafe(name: str, keep: frozenset[str] = frozenset()) -> bool:
    lowered = name.lower()
    if lowered in keep:
        return False
    return lowered in UNSAFE_NAMES or lowered.endswith(UNSAFE_SUFFIXES)


def safe_lines(text: str, keep: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """The file's lines with the unsafe ones replaced by a note; and the names left out."""
    kept, left_out = [], []
    for line in text.split("\n"):
        if BLANK_OR_COMMENT.match(line):
            kept.append(line)
            continue
        found = SETTING.match(line)
        if found is None:
            kept.append(LEFT_OUT.format(what="a line", why="it is not a name = value setting"))
            left_out.append("(an unreadable line)")
        elif is_unsafe(found.group(1), keep):
            name = found.group(1).lower()
            why = "a restored server never takes it from the backup"
            kept.append(LEFT_OUT.format(what=name, why=why))
            left_out.append(name)
        else:
            kept.append(line)
    return kept, left_out


def make_safe(directory: Path, keep: frozenset[str] = frozenset()) -> list[str]:
    """Rewrite the configuration files of a restored directory without what must not come
    from a backup (but the settings in `keep`); returns the names left out (logged)."""
    left_out: list[str] = []
    for name in CONFIGURATION_FILES:
        path = directory / name
        if not path.exists() and not path.is_symlink():
            continue
        text = read_regular(path)
        kept, removed = safe_lines(text, keep)
        if removed:
            write_private(path, "\n".join(kept))
            left_out += removed
            log.warning(
                "%s from the backup: left out %s (a restored server never runs commands, "
                "loads code or archives because a backup says so)",
                name,
                ", ".join(removed),
            )
    return left_out


def read_regular(path: Path) -> str:
    """A file of the restored directory, refused when it is not a plain file of ours."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise RestoreError("prepare", f"{path} cannot be read: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not os.path.samestat(os.fstat(handle.fileno()), os.lstat(path)) or not (
            os.path.isfile(path)
        ):
            raise RestoreError("prepare", f"{path} is not a regular file")
        data = handle.read(SIZE_LIMIT + 1)
    if len(data) > SIZE_LIMIT:
        raise RestoreError("prepare", f"{path} is larger than a configuration file can be")
    return data.decode("utf-8", errors="replace")


def write_private(path: Path, text: str, append: bool = False) -> None:
    """Write (or append to) a file of the restored directory without following a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def trial_options() -> str:
    return " ".join(f"-c {setting}" for setting in TRIAL_OVERRIDES)
