"""The chain of an incremental base backup: the full one it finally builds on, then every
incremental one up to it, oldest first, as `pg_combinebackup` takes them."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.core.errors import RestoreError
from moonflower.proc.spool import owned_prefix


def chain_of(base: BaseBackupRecord, bases: list[BaseBackupRecord]) -> list[BaseBackupRecord]:
    by_label = {record.label: record for record in bases}
    chain = [base]
    while chain[0].parent is not None:
        parent = by_label.get(chain[0].parent)
        if parent is None or parent in chain:
            raise RestoreError(
                "choose",
                f"the base backup {chain[0].label} builds on {chain[0].parent}, which is not "
                "in the bucket: it cannot be restored (take a full one: basebackup --full)",
            )
        chain.insert(0, parent)
    return chain


@contextlib.contextmanager
def combine_area(spool: Path) -> Iterator[Path]:
    """A private directory in the spool for the extracted backups of a chain; removed after.
    Named with this run's lease token (not its pid, which another container sharing the
    spool may have too), so a killed run's area is removed as stale at the next start."""
    area = Path(tempfile.mkdtemp(prefix=owned_prefix(spool), suffix="-combine", dir=spool))
    try:
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)
