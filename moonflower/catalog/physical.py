"""What the bucket holds for point-in-time recovery: base backups (from their backup.json)
and the WAL archive, and the window each timeline can be recovered to."""

import pendulum

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical_keys import (
    BASE_DESCRIPTION,
    WalStored,
    base_label,
    base_prefix,
    parse_wal_key,
    wal_prefix,
)
from moonflower.catalog.trust import dated_later
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.storage.gateway import Storage

DESCRIPTION_LIMIT = 64 * 1024


def base_backups(storage: Storage, prefix: str) -> list[BaseBackupRecord]:
    """Every described base backup, oldest first. One whose description is unreadable,
    names another object, or is dated later than S3 received it (a description planted to
    pass for the newest, which prune would then keep instead of the real ones) is left out
    with a warning."""
    found = []
    for item in storage.list_objects(base_prefix(prefix), deep=True):
        label = base_label(item.key, prefix)
        if label is None or not item.key.endswith("/" + BASE_DESCRIPTION):
            continue
        try:
            record = BaseBackupRecord.from_json(storage.read_small(item.key, DESCRIPTION_LIMIT))
        except (MoonflowerError, ValueError, KeyError, TypeError) as error:
            log.warning("ignoring the base backup %s: unreadable description (%s)", label, error)
            continue
        if record.label != label or base_label(record.key, prefix) != label:
            log.warning("ignoring the base backup %s: its description names another", label)
            continue
        untrusted = dated_later(max(label_time(label), record.stopped), item)
        if untrusted is not None:
            log.warning("ignoring the base backup %s: %s", label, untrusted)
            continue
        found.append(record)
    return sorted(found, key=lambda record: record.label)


def wal_archive(storage: Storage, prefix: str) -> list[WalStored]:
    """The WAL objects under S3_PATH/wal/. A partial upload whose name is dated later than
    S3 received it was not pushed by Moonflower: it is left out (it could otherwise pass
    for the newest push of its segment)."""
    found = []
    for item in storage.list_objects(wal_prefix(prefix)):
        parsed = parse_wal_key(item.key, prefix)
        if parsed is None:
            continue
        untrusted = None if parsed.partial_time is None else dated_later(parsed.partial_time, item)
        if untrusted is not None:
            log.warning("ignoring %s: %s", item.key, untrusted)
            continue
        found.append(WalStored(parsed, item.last_modified, item.size))
    return found


def label_time(label: str) -> pendulum.DateTime:
    moment = pendulum.parse(label, tz="UTC")
    assert isinstance(moment, pendulum.DateTime)
    return moment
