"""Clusters: several PostgreSQL servers backed up by one Moonflower.

A cluster named `reporting` is configured by a `[cluster.reporting]` TOML table holding the
`[postgres]` keys (`host`, `port`, `user`, `password`, `databases`, ...), and optionally
`schedule`, `path` and the tables `[cluster.reporting.wal]`, `[cluster.reporting.retention]`
and `[cluster.reporting.encryption]`; or by the top-level names prefixed with
`CLUSTER_REPORTING_` (`CLUSTER_REPORTING_PG_HOST`, `CLUSTER_REPORTING_SCHEDULE`). Everything a
cluster does not set is the top level's. Its objects live under `S3_PATH/<name>/`, or its
own `path`.
"""

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from moonflower.config import settings as s
from moonflower.config.settings import ALL_SETTINGS, Setting

PREFIX = "CLUSTER_"
SECTION = "cluster"
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
"""A cluster's name: lower-case letters, digits and `-` (`CLUSTER_SIDE_PROJECT_` in the
environment is the cluster `side-project`)."""
ENV_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]*")
OWN_TABLES = ("wal", "retention", "encryption")
"""Sections a cluster sets in tables of its own: [cluster.<name>.wal] ..."""
OVERRIDABLE = tuple(
    setting
    for setting in ALL_SETTINGS
    if setting.section in ("postgres", *OWN_TABLES) or setting in (s.SCHEDULE, s.S3_PATH)
)
"""The top-level settings a cluster may set for itself."""
_SUFFIXES = sorted(
    [base.env for base in OVERRIDABLE]
    + [base.env_file for base in OVERRIDABLE if base.has_file_twin],
    key=len,
    reverse=True,
)


def env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def cluster_setting(name: str, base: Setting) -> Setting:
    """`base` as cluster `name` spells it."""
    if base.section in OWN_TABLES:
        section, key = f"{SECTION}.{name}.{base.section}", base.key
    elif base is s.SCHEDULE:
        section, key = f"{SECTION}.{name}", "schedule"
    elif base is s.S3_PATH:
        section, key = f"{SECTION}.{name}", "path"
    else:
        section, key = f"{SECTION}.{name}", base.key
    return Setting(
        f"{PREFIX}{env_name(name)}_{base.env}",
        section,
        key,
        secret=base.secret,
        file_twin=base.file_twin,
    )


def name_in(variable: str) -> str | None:
    """The cluster a CLUSTER_<NAME>_<setting> variable configures, or None."""
    if not variable.startswith(PREFIX):
        return None
    rest = variable[len(PREFIX) :]
    for suffix in _SUFFIXES:
        if rest.endswith("_" + suffix):
            name = rest[: -len(suffix) - 1]
            if ENV_NAME.fullmatch(name):
                return name.lower().replace("_", "-")
    return None


def cluster_names(environ: Iterable[str], document: Mapping[str, Any]) -> list[str]:
    """The clusters configured: the TOML file's tables as written, then those only the
    environment names, alphabetically."""
    tables = document.get(SECTION)
    names = [str(name) for name in tables] if isinstance(tables, dict) else []
    from_environment = sorted({name for v in environ if (name := name_in(v)) is not None})
    return names + [name for name in from_environment if name not in names]


def known_variables(names: Iterable[str]) -> set[str]:
    """Every environment variable the clusters `names` may set."""
    known = set()
    for name in names:
        for base in OVERRIDABLE:
            setting = cluster_setting(name, base)
            known.add(setting.env)
            if setting.has_file_twin:
                known.add(setting.env_file)
    return known


def guesses(variable: str) -> list[str]:
    """For a CLUSTER_ variable no cluster setting spells: what it may have meant, one guess
    per place its name could end."""
    parts = variable[len(PREFIX) :].split("_")
    found: list[str] = []
    for cut in range(1, len(parts)):
        found += sorted(known_variables(["-".join(parts[:cut]).lower()]))
    return found


def unknown_cluster_keys(tables: object, path: Path) -> list[str]:
    """[cluster.<name>] tables hold the [postgres] keys, `schedule`, `path`, and the tables
    wal, retention and encryption with their sections' keys."""
    if not isinstance(tables, dict):
        return [f"{path}: [cluster] must hold tables such as [cluster.reporting]"]
    problems = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"{path}: [cluster.{name}] must be a table")
            continue
        known: dict[str, set[str]] = {"": set(), **{own: set() for own in OWN_TABLES}}
        for base in OVERRIDABLE:
            setting = cluster_setting(str(name), base)
            where = setting.section.rsplit(".", 1)[-1] if base.section in OWN_TABLES else ""
            known[where].add(setting.key)
            if setting.has_file_twin:
                known[where].add(setting.key_file)
        for key, value in table.items():
            if key in OWN_TABLES and isinstance(value, dict):
                problems += unknown_in(path, f"cluster.{name}.{key}", value, known[key])
            elif key not in known[""]:
                problems += unknown_in(path, f"cluster.{name}", {key: value}, known[""])
    return problems


def unknown_in(path: Path, where: str, table: Mapping[str, Any], known: set[str]) -> list[str]:
    import difflib

    problems = []
    for key in table:
        if key not in known:
            nearest = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
            problems.append(f"{path}: unknown key '{key}' in [{where}]{hint}")
    return problems
