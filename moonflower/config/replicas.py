"""Replicas: full S3 destinations beside the primary, each backup stored on every one.

A replica named `offsite` is configured by the primary's S3 and retention names prefixed
with `REPLICA_OFFSITE_` (`REPLICA_OFFSITE_S3_BUCKET`, `REPLICA_OFFSITE_BACKUP_KEEP_MONTHLY`)
or by a `[replica.offsite]` TOML table with the keys of `[s3]` and `[retention]`. It needs
its bucket; every other setting it leaves out is the primary's.
"""

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from moonflower.config import settings as s
from moonflower.config.settings import Setting

if TYPE_CHECKING:
    from moonflower.config.loader import Validator
    from moonflower.config.model import ReplicaConfig, S3Config

PREFIX = "REPLICA_"
SECTION = "replica"
PRIMARY = "primary"
"""How the primary destination is named beside the replicas (`--from primary`)."""
OPTIONAL = Setting("OPTIONAL", SECTION, "optional")
"""A failure to store on an optional replica is reported, and the run still succeeds."""
SHARED = (
    s.S3_ENDPOINT,
    s.S3_REGION,
    s.S3_BUCKET,
    s.S3_PATH,
    s.S3_ACCESS_KEY,
    s.S3_SECRET_KEY,
    s.S3_CHECKSUM,
    s.S3_MAX_ATTEMPTS,
    s.S3_GOVERNANCE,
    s.S3_EXPIRES_IN,
    *s.KEEP_RULE_SETTINGS,
    s.BACKUP_KEEP_TIMEZONE,
    s.BACKUP_PRUNE_MAX_DELETE,
)
"""The primary's settings a replica may set for itself."""
BASES = (*SHARED, OPTIONAL)
NAME = re.compile(r"[A-Za-z0-9_]+")
_SUFFIXES = sorted(
    [base.env for base in BASES] + [base.env_file for base in BASES if base.has_file_twin],
    key=len,
    reverse=True,
)


def replica_setting(name: str, base: Setting) -> Setting:
    """`base` as replica `name` spells it: REPLICA_<NAME>_<base> and [replica.<name>] <key>."""
    return Setting(
        f"{PREFIX}{name.upper()}_{base.env}",
        f"{SECTION}.{name}",
        base.key,
        secret=base.secret,
        file_twin=base.file_twin,
    )


def name_in(variable: str) -> str | None:
    """The replica a REPLICA_<NAME>_<setting> variable configures (lower case), or None."""
    if not variable.startswith(PREFIX):
        return None
    rest = variable[len(PREFIX) :]
    for suffix in _SUFFIXES:
        if rest.endswith("_" + suffix):
            name = rest[: -len(suffix) - 1]
            if NAME.fullmatch(name):
                return name.lower()
    return None


def replica_names(environ: Iterable[str], document: Mapping[str, Any]) -> list[str]:
    """The replicas configured, in the order they are tried on restore: the TOML file's
    tables as written, then those only the environment names, alphabetically."""
    tables = document.get(SECTION)
    names = [str(name).lower() for name in tables] if isinstance(tables, dict) else []
    from_environment = sorted({name for v in environ if (name := name_in(v)) is not None})
    return names + [name for name in from_environment if name not in names]


def known_variables(names: Iterable[str]) -> set[str]:
    """Every environment variable the replicas `names` may set."""
    known = set()
    for name in names:
        for base in BASES:
            setting = replica_setting(name, base)
            known.add(setting.env)
            if setting.has_file_twin:
                known.add(setting.env_file)
    return known


def guesses(variable: str) -> list[str]:
    """For a REPLICA_ variable no replica setting spells: what it may have meant, one guess
    per place its name could end."""
    rest = variable[len(PREFIX) :]
    found = []
    parts = rest.split("_")
    for cut in range(1, len(parts)):
        name = "_".join(parts[:cut])
        found += sorted(known_variables([name.lower()]))
    return found


def replica_configs(
    validator: "Validator", primary: "S3Config", names: list[str]
) -> tuple["ReplicaConfig", ...]:
    from moonflower.config.replica_values import replica_config

    bad = [name for name in names if not NAME.fullmatch(name)]
    for name in bad:
        validator.problems.append(
            f"[replica.{name}]: a replica's name is letters, digits and _ only"
        )
    return tuple(replica_config(validator, primary, name) for name in names if name not in bad)
