"""A logical backup stored on a replica too: from the same spool file, so the bytes (and the
SHA-256 recorded) are the primary's."""

from pathlib import Path
from typing import TYPE_CHECKING

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.storage.destination import Destination
from moonflower.storage.journal import UploadJournal
from moonflower.storage.transaction import upload_transaction

if TYPE_CHECKING:
    from moonflower.logical.backup import DatabaseResult


def store_copy(
    replica: Destination,
    key: str,
    spool: Path,
    content_type: str,
    config: Config,
    result: "DatabaseResult",
) -> None:
    """The spool file stored on `replica` too, in a transaction of its own. A required
    replica's failure fails the database's backup; an optional one's is a warning. The
    copies already stored stay either way."""
    journal = UploadJournal(
        state_directory(config.backup), replica.config.bucket, replica.config.endpoint
    )
    try:
        with upload_transaction(
            journal, replica.checked, key, spool, content_type, 0, False
        ) as upload:
            stored = upload.upload()
    except MoonflowerError as error:
        problem = f"not stored on the replica {replica.name}: {error}"
        if replica.optional:
            log.warning("%s (optional: the run goes on)", problem)
            result.warnings.append(problem)
        else:
            log.error("%s", problem)
            result.error = problem
        return
    result.copies[replica.name] = stored.key
    log.info("stored on %s: s3://%s/%s", replica.name, replica.config.bucket, stored.key)
