"""One writer per WAL archive: a lease object at `<S3_PATH>/locks/wal-writer.json`.

The first writer creates it with a create-only write (`If-None-Match: *`) and renews it with
`If-Match` on the ETag it last wrote, so two writers can never both believe they hold it: the
one whose conditional write S3 refuses has lost. The lease's age is measured on S3's clock
(the `Date` of S3's answer minus the object's `Last-Modified`), so clock skew between hosts
cannot make a live lease look stale. What the lease says about its holder is untrusted text
from the bucket: it is shown, bounded, and only ever used to decide in favour of refusing.
"""

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from moonflower import __version__
from moonflower.catalog.keys import listing_prefix
from moonflower.config.model import S3Config
from moonflower.core.errors import ConfigError, MoonflowerError, WalError, one_line
from moonflower.core.logs import log
from moonflower.storage.conditional import ConditionalObject

LEASE_OBJECT = "locks/wal-writer.json"
LEASE_LIMIT = 4096
STALE_RENEWALS = 6
"""A lease not renewed for this many renewal periods is stale: its writer is gone."""
CLAIM_ATTEMPTS = 3


def lease_key(prefix: str) -> str:
    return f"{listing_prefix(prefix)}{LEASE_OBJECT}"


@dataclass(frozen=True)
class Holder:
    """Who writes into the archive."""

    writer: str
    """The writer's identity: one `run` process, or one server's `wal-push`."""
    kind: str
    """"stream" (`run` with WAL_STREAM) or "wal-push" (archive_command)."""
    host: str
    pid: int
    process_start: str
    """The process's start time on its host (with `pid`, a process that cannot be reused)."""
    since: str
    """When this writer took the lease (UTC, ISO 8601)."""

    def describe(self) -> str:
        what = "WAL streaming" if self.kind == "stream" else "wal-push"
        return one_line(f"{what} on host {self.host} (pid {self.pid}, since {self.since})")


@dataclass(frozen=True)
class Seen:
    """The lease as S3 holds it now."""

    holder: Holder | None
    """None: the object does not read as a lease (it is refused, never trusted)."""
    etag: str
    age: float
    """Seconds since it was last written, by S3's clock."""

    def describe(self) -> str:
        who = self.holder.describe() if self.holder else "an unreadable lease object"
        return f"{who}, written {self.age:.0f} s ago"


class ArchiveHeld(ConfigError):
    """Another writer holds the archive: nothing of this one's may go into it."""


class LeaseLost(WalError):
    """This writer's lease was taken over or removed: it must stop writing."""


def parse_holder(data: bytes) -> Holder | None:
    try:
        document = json.loads(data)
        return Holder(
            writer=str(document["writer"]),
            kind=str(document["kind"]),
            host=str(document["host"]),
            pid=int(document["pid"]),
            process_start=str(document.get("process_start", "")),
            since=str(document["since"]),
        )
    except (ValueError, TypeError, KeyError):
        return None


class WriterLease:
    """This writer's side of the lease: claim, renew, release. Each is one request (with
    botocore's own retry), never a long wait: a writer that cannot reach S3 tries again
    at its next renewal, and PostgreSQL calls a refused wal-push again."""

    def __init__(
        self,
        config: S3Config,
        me: Holder,
        renew_seconds: float,
        gone: Callable[[Holder], bool] = lambda holder: False,
    ) -> None:
        self.config = config
        self.key = lease_key(config.prefix)
        self._object = ConditionalObject(config, self.key)
        self.me = me
        self.stale_after = STALE_RENEWALS * renew_seconds
        self.gone = gone
        """Can the holder be known to be dead without waiting (its host is this one)?"""
        self.etag: str | None = None

    def look(self) -> Seen | None:
        """The lease now, or None when the archive has none."""
        found = self._object.read(LEASE_LIMIT)
        if found is None:
            return None
        holder = parse_holder(found.data) if len(found.data) <= LEASE_LIMIT else None
        return Seen(holder, found.etag, found.age)

    def stale(self, seen: Seen) -> bool:
        return seen.age > self.stale_after or (seen.holder is not None and self.gone(seen.holder))

    def claim(self) -> None:
        """Take the lease, or raise ArchiveHeld naming its holder."""
        for _ in range(CLAIM_ATTEMPTS):
            seen = self.look()
            if seen is None:
                replacing = None
            elif seen.holder is not None and seen.holder.writer == self.me.writer:
                replacing = seen.etag
            elif self.stale(seen):
                log.warning("taking over the WAL archive's stale lease from %s", seen.describe())
                replacing = seen.etag
            else:
                raise self.held_by(seen)
            if self._write(replacing):
                return
        raise WalError(f"the WAL archive's lease {self.key} kept changing while it was claimed")

    def check_free(self) -> None:
        """ArchiveHeld when another writer holds a lease that is not stale."""
        seen = self.look()
        if seen is not None and not self.stale(seen):
            raise self.held_by(seen)

    def held_by(self, seen: Seen) -> ArchiveHeld:
        where = f"s3://{self.config.bucket}/{listing_prefix(self.config.prefix)}"
        return ArchiveHeld(
            [
                f"S3_PATH: the WAL archive {where} is written by {seen.describe()}; one writer "
                "per archive (stop that one, or give this server its own S3_PATH)"
            ]
        )

    def renew(self) -> None:
        """Write the lease again, on the condition that it is still the one this writer
        wrote; LeaseLost when another writer took it over."""
        if self.etag is None:
            raise LeaseLost("this writer does not hold the WAL archive's lease")
        try:
            if self._write(self.etag):
                return
        except MoonflowerError as error:
            if self.look() is not None:
                raise
            log.warning("the WAL archive's lease was removed (%s); writing it again", error)
            if self._write(None):
                return
        seen = self.look()
        self.etag = None
        who = seen.describe() if seen else "nobody (it was removed)"
        raise LeaseLost(f"the WAL archive's lease was taken over by {who}; this writer stopped")

    def release(self) -> None:
        """Remove the lease if it is still this writer's (at a clean stop)."""
        if self.etag is None:
            return
        etag, self.etag = self.etag, None
        self._object.delete(etag)

    def _write(self, replacing: str | None) -> bool:
        """One conditional write (create, or replace the version `replacing`); False when
        S3 refused the condition (someone else wrote in between)."""
        body = json.dumps({**asdict(self.me), "moonflower": __version__}).encode()
        etag = self._object.write(body, replacing)
        if etag is None:
            return False
        self.etag = etag
        return True
