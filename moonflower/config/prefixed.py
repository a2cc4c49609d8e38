"""Settings seen through a name and a prefix: a replica's `REPLICA_<NAME>_S3_BUCKET`, a
cluster's `CLUSTER_<NAME>_PG_HOST`. What both need: which name a variable configures, the
names configured, every variable they may set, and guesses for a misspelt one."""

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moonflower.config.settings import Setting


@dataclass(frozen=True)
class Prefixed:
    prefix: str
    """`REPLICA_` or `CLUSTER_`."""
    section: str
    """The TOML table of tables: `replica` or `cluster`."""
    bases: tuple[Setting, ...]
    """The top-level settings a name may set for itself."""
    setting_of: Callable[[str, Setting], Setting]
    """`base` as the name `name` spells it."""
    env_name: re.Pattern[str]
    """What may stand between the prefix and the setting in a variable's name."""
    joiner: str
    """How `_` in a variable's name reads in the name (`-` for clusters)."""
    lower_toml_names: bool = False
    """Replicas' TOML table names are read in lower case; clusters' must be written so."""
    suffixes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = [base.env for base in self.bases]
        names += [base.env_file for base in self.bases if base.has_file_twin]
        object.__setattr__(self, "suffixes", tuple(sorted(names, key=len, reverse=True)))

    def name_in(self, variable: str) -> str | None:
        """The name a <PREFIX><NAME>_<setting> variable configures, or None."""
        if not variable.startswith(self.prefix):
            return None
        rest = variable[len(self.prefix) :]
        for suffix in self.suffixes:
            if rest.endswith("_" + suffix):
                name = rest[: -len(suffix) - 1]
                if self.env_name.fullmatch(name):
                    return name.lower().replace("_", self.joiner)
        return None

    def names(self, environ: Iterable[str], document: Mapping[str, Any]) -> list[str]:
        """The names configured: the TOML file's tables as written, then those only the
        environment names, alphabetically."""
        tables = document.get(self.section)
        names = [str(name) for name in tables] if isinstance(tables, dict) else []
        if self.lower_toml_names:
            names = [name.lower() for name in names]
        from_environment = sorted({n for v in environ if (n := self.name_in(v)) is not None})
        return names + [name for name in from_environment if name not in names]

    def known_variables(self, names: Iterable[str]) -> set[str]:
        """Every environment variable the names may set."""
        known = set()
        for name in names:
            for base in self.bases:
                setting = self.setting_of(name, base)
                known.add(setting.env)
                if setting.has_file_twin:
                    known.add(setting.env_file)
        return known

    def guesses(self, variable: str) -> list[str]:
        """For a variable with the prefix that no setting spells: what it may have meant,
        one guess per place its name could end."""
        parts = variable[len(self.prefix) :].split("_")
        found: list[str] = []
        for cut in range(1, len(parts)):
            found += sorted(self.known_variables([self.joiner.join(parts[:cut]).lower()]))
        return found


def unknown_keys_in(path: Path, where: str, table: Mapping[str, Any], known: set[str]) -> list[str]:
    """The keys of the TOML table `[where]` that are not `known`, each with its likeliest
    meaning."""
    problems = []
    for key in table:
        if key not in known:
            nearest = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
            problems.append(f"{path}: unknown key '{key}' in [{where}]{hint}")
    return problems
