"""The command line of several destinations: `--from` and `moonflower sync`."""

from collections.abc import Callable
from typing import Any

FROM_HELP = (
    "read only from this destination (`primary` or a replica's name), without falling back "
    "to the others"
)


def add_sync_command(add_command: Callable[..., Any]) -> None:
    syncing = add_command(
        "sync",
        help="copy to each replica (or the primary) the backups and WAL it lacks",
        description="For every destination (or only the one --to names), copy the logical "
        "backups, base backups and completed WAL files the others hold and it lacks (partial "
        "WAL segments are not copied): downloaded from a destination that has them, "
        "checked against the SHA-256 recorded when they were made, stored without "
        "overwriting anything. A copy that fails its checksum, or an object Moonflower did "
        "not write, is never copied. Exits 1 if anything could not be copied.",
    )
    syncing.add_argument("--to", metavar="NAME", help="only this destination")
    syncing.add_argument("--dry-run", action="store_true", help="show what would be copied")
    syncing.add_argument("--json", action="store_true", help="print a JSON array for scripts")
