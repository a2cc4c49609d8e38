"""Size anomalies: a backup much smaller than the ones before it "succeeded" suspiciously
(a dropped table, a wrong database, an empty restore target backed up)."""

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from moonflower.catalog.flags import flag_backup
from moonflower.catalog.keys import BackupKey, parse_key
from moonflower.config.model import Config, SizeDrop
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import database_context, log
from moonflower.core.sizes import human_size

if TYPE_CHECKING:
    from moonflower.logical.backup import DatabaseResult
    from moonflower.storage.gateway import Storage

PREVIOUS_BACKUPS = 5
"""How many of the latest earlier backups the median is taken over."""


def size_drop(size: int, previous: Sequence[int], threshold: float) -> str | None:
    """Why `size` is suspicious next to the `previous` sizes, if it is."""
    if not previous:
        return None
    import statistics  # with fractions, 4 ms of start-up; needed only once the dumps are done

    median = statistics.median(previous)
    if size >= threshold * median:
        return None
    share = size / median if median else 0.0
    return (
        f"size dropped: {human_size(size)} is {share:.0%} of the median "
        f"{human_size(int(median))} of the previous {len(previous)} backup(s), below "
        f"BACKUP_SIZE_DROP_THRESHOLD ({threshold:.0%})"
    )


class EarlierBackups:
    """The listing of the backups already in S3, taken in a thread of its own while the dumps
    run (`start`, as soon as S3 is open), so that it is not one more round trip after the
    last dump ends. Backups this run writes meanwhile do not count: only those created
    before each new one are compared."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._found: list[tuple[BackupKey, int]] = []
        self._error: MoonflowerError | None = None
        self._thread: threading.Thread | None = None

    def start(self, storage: "Storage") -> None:
        self._thread = threading.Thread(
            target=self._list, args=(storage,), name="size-listing", daemon=True
        )
        self._thread.start()

    def _list(self, storage: "Storage") -> None:
        from moonflower.catalog.logical import our_backups  # boto3: not on the way to pg_dump

        try:
            self._found = our_backups(storage, self._prefix)
        except MoonflowerError as error:
            self._error = error

    def listing(self, storage: "Callable[[], Storage]") -> list[tuple[BackupKey, int]]:
        """The listing; taken now if S3 was never opened to start it."""
        if self._thread is None:
            self._list(storage())
        else:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found


def size_drops(
    listing: list[tuple[BackupKey, int]],
    prefix: str,
    uploaded: dict[str, tuple[str, int]],
    threshold: float,
) -> dict[str, str]:
    """For each database name -> (its new key, size): the drop found, if any. Only earlier
    backups of the same database in the same format, compression and encryption count."""
    drops: dict[str, str] = {}
    for database, (key, size) in uploaded.items():
        new = parse_key(key, prefix)
        if new is None:
            continue
        earlier = sorted(
            (backup.created, stored_size)
            for backup, stored_size in listing
            if backup.key_name == new.key_name
            and backup.extension == new.extension
            and backup.created < new.created
        )
        sizes = [stored_size for _, stored_size in earlier[-PREVIOUS_BACKUPS:]]
        found = size_drop(size, sizes, threshold)
        if found is not None:
            drops[database] = found
    return drops


def flag_size_drops(
    results: "list[DatabaseResult]",
    earlier: EarlierBackups,
    storage: "Callable[[], Storage]",
    config: Config,
) -> None:
    """Flag each backup much smaller than the previous ones; with BACKUP_SIZE_DROP=fail the
    database fails (its object stays: it is complete, and it may be right)."""
    uploaded = {r.database: (r.key, r.size) for r in results if r.ok and r.key is not None}
    if not uploaded:
        return
    monitoring = config.monitoring
    try:
        drops = size_drops(
            earlier.listing(storage), config.s3.prefix, uploaded, monitoring.size_drop_threshold
        )
    except MoonflowerError as error:
        log.warning("the size check could not list the earlier backups: %s", error)
        return
    for result in results:
        result.size_drop = drops.get(result.database)
        if result.size_drop is None:
            continue
        with database_context(result.database):
            key = uploaded[result.database][0]
            flag_backup(storage(), config.s3.prefix, config.backup.spool_dir, key, result.size_drop)
            if monitoring.size_drop == SizeDrop.FAIL:
                result.error = f"{result.size_drop} (BACKUP_SIZE_DROP=fail)"
                log.error("%s", result.error)
            else:
                log.warning("%s", result.size_drop)
