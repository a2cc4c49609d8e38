"""The `[retention]` settings: keep rules (GFS) and the safety limit of prune."""

from typing import TYPE_CHECKING

import pendulum

from moonflower.config import settings as s
from moonflower.config.model import DEFAULT_PRUNE_MAX_DELETE, KEEP_RULES, RetentionConfig
from moonflower.config.sources import RawValue
from moonflower.config.values import text, whole_number

if TYPE_CHECKING:
    from moonflower.config.loader import Validator

MAX_KEEP = 1_000_000


def time_zone(raw: RawValue) -> str:
    name = text(raw)
    try:
        pendulum.timezone(name)
    except ValueError as error:  # unknown (InvalidTimezone), or a path that is no name
        raise ValueError(
            f'"{name}" is not a time zone; use an IANA name such as "UTC" or "Europe/Berlin"'
        ) from error
    return name


def retention_config(validator: "Validator") -> RetentionConfig:
    count = whole_number(0, MAX_KEEP)
    rules = {
        rule: validator.optional(setting, count, None)
        for rule, setting in zip(KEEP_RULES, s.KEEP_RULE_SETTINGS, strict=True)
    }
    return RetentionConfig(
        **rules,
        timezone=validator.optional(s.BACKUP_KEEP_TIMEZONE, time_zone, "UTC"),
        max_delete_percent=validator.optional(
            s.BACKUP_PRUNE_MAX_DELETE, whole_number(0, 100), DEFAULT_PRUNE_MAX_DELETE
        ),
    )
