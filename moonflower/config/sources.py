"""Raw setting values from their sources (TOML file, environment, command line), layered.

Nothing here interprets a value; it only finds where each one comes from, reads `*_FILE`
secrets, and collects every problem instead of stopping at the first.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moonflower.config.clusters import OVERRIDABLE as CLUSTER_OVERRIDABLE
from moonflower.config.clusters import SECTION as CLUSTER_SECTION
from moonflower.config.clusters import cluster_setting, unknown_cluster_keys
from moonflower.config.prefixed import unknown_keys_in
from moonflower.config.replicas import BASES as REPLICA_BASES
from moonflower.config.replicas import SECTION as REPLICA_SECTION
from moonflower.config.settings import ALL_SETTINGS, Setting

QUOTES = ("'", '"')


@dataclass(frozen=True)
class RawValue:
    value: Any
    origin: str
    """How to name this value to the user: an environment variable or a TOML key."""


def unquote(value: str) -> str:
    """Strip one pair of matching surrounding quotes, as the old tool did."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in QUOTES:
        return value[1:-1]
    return value


def read_secret_file(path_text: str, origin: str, problems: list[str]) -> str | None:
    try:
        path = Path(path_text).expanduser()
    except RuntimeError:
        problems.append(f'{origin}: cannot expand "{path_text}": no such user')
        return None
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as error:
        problems.append(f"{origin}: cannot read {path}: {error.strerror or error}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{origin}: {path} is not UTF-8 text")
        return None
    return content.rstrip("\r\n")


def load_toml(path: Path, origin: str, problems: list[str]) -> dict[str, Any] | None:
    """The document, or None when the file cannot be read at all (the problem says why)."""
    try:
        path = path.expanduser()
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        problems.append(f"{origin}: file {path} does not exist")
        return None
    except (OSError, RuntimeError) as error:
        problems.append(
            f"{origin}: cannot read {path}: {getattr(error, 'strerror', None) or error}"
        )
        return None
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{origin}: {path} is not valid TOML: {error}")
        return None
    problems.extend(unknown_toml_keys(document, path))
    return document


def unknown_toml_keys(document: Mapping[str, Any], path: Path) -> list[str]:
    known: dict[str, set[str]] = {}
    for setting in ALL_SETTINGS:
        keys = known.setdefault(setting.section, set())
        keys.add(setting.key)
        if setting.has_file_twin:
            keys.add(setting.key_file)
    problems = []
    for section, table in document.items():
        if section == REPLICA_SECTION:
            problems += unknown_replica_keys(table, path)
            continue
        if section == CLUSTER_SECTION:
            problems += unknown_cluster_keys(table, path)
            continue
        if section not in known:
            problems.append(f"{path}: unknown section [{section}]")
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}: [{section}] must be a table")
            continue
        for key in table:
            if key not in known[section]:
                problems.append(f"{path}: unknown key '{key}' in [{section}]")
    return problems


class Layers:
    """Resolves each setting from command line > environment > TOML file."""

    def __init__(
        self,
        environ: Mapping[str, str],
        document: Mapping[str, Any],
        overrides: Mapping[str, RawValue],
        problems: list[str],
    ) -> None:
        self._environ = environ
        self._document = document
        self._overrides = overrides
        self._problems = problems
        self._found: dict[str, RawValue | None] = {}
        self.reported: set[str] = set()
        """Settings whose sources already produced a problem (both a value and its file, an
        unreadable file): no second message says they are missing."""

    @property
    def problems(self) -> list[str]:
        return self._problems

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ

    @property
    def document(self) -> Mapping[str, Any]:
        return self._document

    def get(self, setting: Setting) -> RawValue | None:
        """The value with the highest precedence; each setting is looked up once."""
        if setting.env not in self._found:
            before = len(self._problems)
            found = self._overrides.get(setting.env)
            if found is None:
                found = self._from_environment(setting)
            if found is None:
                found = self._from_toml(setting)
            self._found[setting.env] = found
            if len(self._problems) > before:
                self.reported.add(setting.env)
        return self._found[setting.env]

    def env(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return unquote(value)

    def _from_environment(self, setting: Setting) -> RawValue | None:
        direct = self.env(setting.env)
        file_path = self.env(setting.env_file) if setting.has_file_twin else None
        if direct is not None and file_path is not None:
            self._problems.append(f"{setting.env} and {setting.env_file}: set only one of them")
            return None
        if file_path is not None:
            content = read_secret_file(file_path, setting.env_file, self._problems)
            return None if content is None else RawValue(content, setting.env_file)
        if direct is not None:
            return RawValue(direct, setting.env)
        return None

    def _from_toml(self, setting: Setting) -> RawValue | None:
        table: Any = self._document
        for part in setting.section.split("."):  # [replica.offsite] is a table in a table
            table = table.get(part) if isinstance(table, dict) else None
        if not isinstance(table, dict):
            return None
        has_direct = setting.key in table
        has_file = setting.has_file_twin and setting.key_file in table
        file_name = f"[{setting.section}] {setting.key_file}"
        if has_direct and has_file:
            self._problems.append(f"{setting.toml_name} and {file_name}: set only one of them")
            return None
        if has_file:
            file_path = table[setting.key_file]
            if not isinstance(file_path, str) or not file_path:
                self._problems.append(f"{file_name}: expected a file path")
                return None
            content = read_secret_file(file_path, file_name, self._problems)
            return None if content is None else RawValue(content, file_name)
        if has_direct:
            return RawValue(table[setting.key], setting.toml_name)
        return None


class ClusterLayers(Layers):
    """One cluster's view: its own value of a setting it may set (CLUSTER_<NAME>_... or
    [cluster.<name>]), else the top level's."""

    def __init__(
        self,
        name: str,
        environ: Mapping[str, str],
        document: Mapping[str, Any],
        overrides: Mapping[str, RawValue],
        problems: list[str],
    ) -> None:
        super().__init__(environ, document, overrides, problems)
        self.name = name
        self._own = {base.env: cluster_setting(name, base) for base in CLUSTER_OVERRIDABLE}

    def own(self, setting: Setting) -> RawValue | None:
        """The cluster's own value, if it sets one."""
        own = self._own.get(setting.env)
        if own is None:
            return None
        found = super().get(own)
        if own.env in self.reported:
            self.reported.add(setting.env)
        return found

    def get(self, setting: Setting) -> RawValue | None:
        found = self._overrides.get(setting.env)
        if found is not None:
            return found
        own = self.own(setting)
        return own if own is not None else super().get(setting)


def unknown_replica_keys(tables: object, path: Path) -> list[str]:
    """[replica.<name>] tables hold the keys of [s3] and [retention], and `optional`."""
    if not isinstance(tables, dict):
        return [f"{path}: [replica] must hold tables such as [replica.offsite]"]
    known = {base.key for base in REPLICA_BASES}
    known |= {base.key_file for base in REPLICA_BASES if base.has_file_twin}
    problems = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"{path}: [replica.{name}] must be a table")
            continue
        problems += unknown_keys_in(path, f"replica.{name}", table, known)
    return problems
