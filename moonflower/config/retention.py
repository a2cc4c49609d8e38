"""The `[retention]` settings: keep rules (GFS) and the safety limit of prune."""

from collections.abc import Callable
from typing import TYPE_CHECKING

import pendulum

from moonflower.config import settings as s
from moonflower.config.model import KEEP_RULES, RetentionConfig
from moonflower.config.settings import Setting
from moonflower.config.sources import RawValue
from moonflower.config.values import text, whole_number

if TYPE_CHECKING:
    from moonflower.config.loader import Validator

MAX_KEEP = 1_000_000
NO_RULES = RetentionConfig()


def time_zone(raw: RawValue) -> str:
    name = text(raw)
    try:
        pendulum.timezone(name)
    except ValueError as error:  # unknown (InvalidTimezone), or a path that is no name
        raise ValueError(
            f'"{name}" is not a time zone; use an IANA name such as "UTC" or "Europe/Berlin"'
        ) from error
    return name


def retention_config(
    validator: "Validator",
    spelt: Callable[[Setting], Setting] = lambda setting: setting,
    inherited: RetentionConfig = NO_RULES,
) -> RetentionConfig:
    """The keep rules and the safety limit; `spelt` names each setting as a replica spells
    it, and what it leaves unset is `inherited` (the primary's)."""
    count = whole_number(0, MAX_KEEP)
    rules = {
        rule: validator.optional(spelt(setting), count, getattr(inherited, rule))
        for rule, setting in zip(KEEP_RULES, s.KEEP_RULE_SETTINGS, strict=True)
    }
    return RetentionConfig(
        **rules,
        timezone=validator.optional(spelt(s.BACKUP_KEEP_TIMEZONE), time_zone, inherited.timezone),
        max_delete_percent=validator.optional(
            spelt(s.BACKUP_PRUNE_MAX_DELETE), whole_number(0, 100), inherited.max_delete_percent
        ),
    )
