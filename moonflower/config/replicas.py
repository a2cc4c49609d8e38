"""Replicas: full S3 destinations beside the primary, each backup stored on every one.

A replica named `offsite` is configured by the primary's S3 and retention names prefixed
with `REPLICA_OFFSITE_` (`REPLICA_OFFSITE_S3_BUCKET`, `REPLICA_OFFSITE_BACKUP_KEEP_MONTHLY`)
or by a `[replica.offsite]` TOML table with the keys of `[s3]` and `[retention]`. It needs
its bucket; every other setting it leaves out is the primary's.
"""

import re
from typing import TYPE_CHECKING

from moonflower.config import settings as s
from moonflower.config.prefixed import Prefixed
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


def replica_setting(name: str, base: Setting) -> Setting:
    """`base` as replica `name` spells it: REPLICA_<NAME>_<base> and [replica.<name>] <key>."""
    return Setting(
        f"{PREFIX}{name.upper()}_{base.env}",
        f"{SECTION}.{name}",
        base.key,
        secret=base.secret,
        file_twin=base.file_twin,
    )


REPLICAS = Prefixed(PREFIX, SECTION, BASES, replica_setting, NAME, "_", lower_toml_names=True)
"""Replicas, in the order restores try them."""


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
