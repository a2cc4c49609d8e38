"""Backups their own run flagged (the size check: much smaller than the ones before), kept
in the bucket beside them as `<S3_PATH>/flags/<backup's name>.json`, so that any host's
restore passes over them unless one is asked for by key, and `list` shows them.

A flag only ever narrows what a restore picks on its own: one planted in the bucket makes
a restore take an older backup (and say why), never a worse one."""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pendulum

from moonflower.catalog.keys import listing_prefix
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.proc.spool import spool_file

if TYPE_CHECKING:  # boto3 loads with the gateway: not before a backup's first dump starts
    from moonflower.storage.gateway import Storage

FLAGS_FOLDER = "flags/"
FLAG_LIMIT = 16 * 1024


def flags_prefix(prefix: str) -> str:
    return f"{listing_prefix(prefix)}{FLAGS_FOLDER}"


def flag_key(prefix: str, backup_key: str) -> str:
    return f"{flags_prefix(prefix)}{backup_key.rsplit('/', 1)[-1]}.json"


def flag_backup(storage: "Storage", prefix: str, spool: Path, backup_key: str, reason: str) -> None:
    """Record that the run flagged `backup_key` (logged, never raised: the run's result
    already says it)."""
    document = {"key": backup_key, "reason": reason, "flagged": pendulum.now("UTC").isoformat()}
    try:
        with spool_file(spool, ".json") as path:
            path.write_text(json.dumps(document))
            storage.upload(path, flag_key(prefix, backup_key), "application/json")
    except MoonflowerError as error:
        log.warning("could not record the flag of %s in the bucket: %s", backup_key, error)


def flagged(storage: "Storage", prefix: str) -> set[str]:
    """The names (last key part) of the backups that carry a flag."""
    start = flags_prefix(prefix)
    return {
        item.key[len(start) :].removesuffix(".json")
        for item in storage.list_objects(start)
        if item.key.endswith(".json")
    }


def flag_reason(storage: "Storage", prefix: str, backup_key: str) -> str:
    try:
        document = json.loads(storage.read_small(flag_key(prefix, backup_key), FLAG_LIMIT))
    except (MoonflowerError, ValueError):
        return "flagged by its run"
    reason = document.get("reason") if isinstance(document, dict) else None
    return str(reason) if reason else "flagged by its run"
