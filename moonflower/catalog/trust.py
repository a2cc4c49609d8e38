"""The one trust filter both kinds of backup pass through when the bucket is listed: a name
dates the moment its backup started, so S3 cannot have received it earlier. An object whose
name is later than S3's own LastModified (beyond the clock skew S3 itself tolerates) was
not written by Moonflower: it is left out, so it can neither become "the newest" backup nor
make prune delete real ones."""

import pendulum

from moonflower.storage.objects import StoredObject

S3_CLOCK_SKEW = pendulum.duration(minutes=15)


def dated_later(claimed: pendulum.DateTime, item: StoredObject) -> str | None:
    """Why `item` cannot be trusted when its name claims `claimed`; None when it can."""
    if claimed <= item.last_modified + S3_CLOCK_SKEW:
        return None
    return (
        f"its name says {claimed.isoformat()}, but S3 received it at "
        f"{item.last_modified.isoformat()} (not made by Moonflower?)"
    )
