"""Whatever the environment or TOML holds, configuration never crashes: a valid Config, or a
ConfigError with one line per problem."""

import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moonflower.config.loader import load_config
from moonflower.config.settings import ALL_SETTINGS
from moonflower.core.errors import ConfigError
from moonflower.core.redact import redactor

NAMES = (
    [setting.env for setting in ALL_SETTINGS]
    + [setting.env_file for setting in ALL_SETTINGS if setting.has_file_twin]
    + ["S3_KEY_ID", "MOONFLOWER_CONFIG"]
)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=300,
) | st.sampled_from(
    [
        "",
        " ",
        "'",
        '"',
        "''",
        "0",
        "-1",
        "99999999999999999999",
        "true",
        "* * * * *",
        "30 days",
        "http://127.0.0.1:9",
        "/",
        "../x",
    ]
)


@pytest.fixture(autouse=True, scope="module")
def scratch_directory() -> Iterator[None]:
    """Relative BACKUP_SPOOL_DIR/BACKUP_STATE_DIR values are made (when their parent exists)
    where the examples run: in a scratch directory, not in the checkout."""
    before = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(before)


def check(run: callable) -> None:  # type: ignore[valid-type]
    problems: list[str] = []
    redactor.clear()  # secrets registered by earlier examples would mask this one's words
    try:
        run()
    except ConfigError as error:
        problems = error.problems or ["(a ConfigError without problems)"]
    for problem in problems:
        assert problem.isprintable(), problem
        assert ": " in problem
        assert len(problem) <= 400


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NAMES), TEXT, max_size=len(NAMES)))
def test_any_environment_gives_a_config_or_one_line_problems(environ: dict[str, str]) -> None:
    check(lambda: load_config(environ))


TOML_VALUES = st.recursive(
    st.none().map(lambda _: "") | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4),
    max_leaves=8,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(sorted({(s.section, s.key) for s in ALL_SETTINGS})),
        TOML_VALUES,
        max_size=10,
    )
)
def test_any_toml_gives_a_config_or_one_line_problems(
    tmp_path_factory,
    document: dict[tuple[str, str], object],
) -> None:
    path: Path = tmp_path_factory.mktemp("toml") / "moonflower.toml"
    tables: dict[str, dict[str, object]] = {}
    for (section, key), value in document.items():
        tables.setdefault(section, {})[key] = value
    lines = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            lines.append(f"{key} = {toml_literal(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))  # the generator writes valid TOML
    check(lambda: load_config({}, path))


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, int) or value == value else "0"
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(item) for item in value) + "]"
    text = str(value)
    escaped = "".join(
        f"\\u{ord(char):04x}" if ord(char) < 0x20 or char in '"\\\x7f' else char for char in text
    )
    return f'"{escaped}"'
