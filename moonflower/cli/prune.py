"""The `prune` command's options: the keep rules as flags, the safety limit, the output."""

import argparse
from collections.abc import Callable
from typing import Any

KEEP_FLAGS = {
    "last": "N backups",
    "hourly": "backup of each of the last N hours that have one",
    "daily": "backup of each of the last N days that have one",
    "weekly": "backup of each of the last N ISO weeks that have one",
    "monthly": "backup of each of the last N months that have one",
    "yearly": "backup of each of the last N years that have one",
}
RETENTION_FLAGS = {
    **{f"keep_{rule}": f"BACKUP_KEEP_{rule.upper()}" for rule in KEEP_FLAGS},
    "keep_within": "S3_EXPIRES_IN",
    "keep_timezone": "BACKUP_KEEP_TIMEZONE",
    "max_delete": "BACKUP_PRUNE_MAX_DELETE",
}


def add_prune_command(add_command: Callable[..., Any]) -> None:
    prune = add_command(
        "prune",
        help="delete the backups the keep rules or S3_EXPIRES_IN no longer keep",
        description="Delete the backups that no keep rule (BACKUP_KEEP_*, restic's "
        "semantics) keeps and that are older than S3_EXPIRES_IN, every version of them. "
        "Each database, the globals and the base backups are pruned apart; the newest of "
        "each is always kept; versions still under Object Lock are skipped and retried by a "
        "later prune. Only keys directly under S3_PATH that follow Moonflower's naming are "
        "considered. Without DATABASE names, physical backups are pruned too: base backups "
        "and the WAL no kept one needs. With keep rules, deleting more than "
        "BACKUP_PRUNE_MAX_DELETE percent of a database's backups at once is refused unless "
        "--yes is given.",
    )
    prune.add_argument(
        "prune_databases", nargs="*", metavar="DATABASE", help="only these databases"
    )
    prune.add_argument(
        "--dry-run",
        action="store_true",
        help="show every backup with the rules that keep it, or remove; delete nothing",
    )
    for rule, period in KEEP_FLAGS.items():
        prune.add_argument(
            f"--keep-{rule}",
            metavar="N",
            help=f"keep the newest {period} (BACKUP_KEEP_{rule.upper()})",
        )
    prune.add_argument(
        "--keep-within",
        metavar="DURATION",
        help='also keep every backup younger than this, e.g. "7 days" (S3_EXPIRES_IN)',
    )
    prune.add_argument(
        "--keep-timezone",
        metavar="ZONE",
        help="the time zone of the periods, e.g. Europe/Berlin (BACKUP_KEEP_TIMEZONE)",
    )
    prune.add_argument(
        "--max-delete",
        metavar="PERCENT",
        help="refuse to delete more of a database's backups than this (BACKUP_PRUNE_MAX_DELETE)",
    )
    prune.add_argument(
        "--yes", action="store_true", help="delete even beyond BACKUP_PRUNE_MAX_DELETE"
    )
    prune.add_argument("--json", action="store_true", help="print the decisions as JSON")


def retention_overrides(arguments: argparse.Namespace) -> dict[str, tuple[str, object]]:
    """Flags given to `prune`, by the setting they override, with the flag's name."""
    overrides: dict[str, tuple[str, object]] = {}
    for attribute, setting in RETENTION_FLAGS.items():
        value = getattr(arguments, attribute, None)
        if value is not None:
            overrides[setting] = (attribute.replace("_", "-"), value)
    return overrides
