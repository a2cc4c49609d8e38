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
from pathlib import Path

from moonflower.config import settings as s
from moonflower.config.prefixed import Prefixed, unknown_keys_in
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


CLUSTERS = Prefixed(PREFIX, SECTION, OVERRIDABLE, cluster_setting, ENV_NAME, "-")


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
                problems += unknown_keys_in(path, f"cluster.{name}.{key}", value, known[key])
            elif key not in known[""]:
                problems += unknown_keys_in(path, f"cluster.{name}", {key: value}, known[""])
    return problems
