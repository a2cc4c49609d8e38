"""The status page: an overview of every database (problems first), the replicas, the point-
in-time recovery window as a timeline, and per database its latest backups with charts of
their size and duration (inline SVG with labelled axes, no script, nothing from another
site). Backups come from the bucket listing (cached for a minute, and dropped when a run or
a job ends), durations and failed attempts from the status file. Every text is escaped and
masked; every time is UTC to the second."""

import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pendulum

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.sizes import human_size
from moonflower.reporting.health import health
from moonflower.reporting.page_svg import (
    line_chart,
    nice_size_ceiling,
    recovery_timeline,
    seconds_label,
    size_label,
)
from moonflower.reporting.page_text import age, duration, esc, folded, moment_of, when
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import Destination

if TYPE_CHECKING:
    from moonflower.pitr.listing import ListedBase

CHART_POINTS = 30
LOCKS_SHOWN = 5
"""The newest backups of each database whose lock is read (one HEAD each)."""
CACHE_SECONDS = 60.0
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:62em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .7em;text-align:left;
border-bottom:1px solid #ddd;vertical-align:top}.ok{color:#176117}.failed{color:#a11}
.warn{color:#8a5a00}td.num{text-align:right}details summary{cursor:pointer}
svg{background:#fafafa;border:1px solid #ddd;display:block;margin:.3em 0}
.axis{stroke:#555}.grid{stroke:#e4e4e4}.tick,.axis-title{font-size:11px;fill:#444}
.chart-title{font-size:12px;fill:#222}.size{fill:#1f5fa8}.duration{fill:#c25400}
polyline{fill:none;stroke-width:1.5}.size-line{stroke:#1f5fa8}.duration-line{stroke:#c25400}
.window{fill:#9cc3e8}.base{fill:#1f5fa8}.gap{font-size:11px;fill:#a11}
"""
PROBLEM, WARNING, FINE = 0, 1, 2


def pitr_window(bases: "list[ListedBase]") -> str | None:
    """From the oldest base backup's start to the farthest its WAL reaches, whatever order
    the listing is in (`list` gives the newest first)."""
    if not bases:
        return None
    start = min(listed.window.start for listed in bases)
    end = max(listed.window.end for listed in bases)
    return f"from {when(start)} to {when(end)}"


@dataclass(frozen=True)
class Shown:
    """One backup in the bucket, with what the status file knows of it."""

    key: str
    created: pendulum.DateTime
    size: int
    encrypted: bool
    seconds: float | None = None
    locked_until: pendulum.DateTime | None = None


@dataclass
class Listing:
    """What the bucket holds: backups per database (newest first), base backups."""

    backups: dict[str, list[Shown]] = field(default_factory=dict)
    bases: "list[ListedBase]" = field(default_factory=list)
    error: str | None = None


def page_document(body: str) -> str:
    """The whole page around `body`: one style, no script, nothing from another site."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Moonflower</title>"
        f"<style>{STYLE}</style></head><body><h1>Moonflower</h1>\n{body}\n</body></html>"
    )


def where(places: object) -> str:
    """The destinations holding a backup, as recorded when it was stored."""
    if not isinstance(places, list) or not places:
        return "-"
    return ", ".join(str(place) for place in places)


def replica_row(name: str, record: dict[str, Any]) -> str:
    kind = "optional replica" if record.get("optional") else "replica"
    if record.get("ok"):
        outcome = f"<td class=ok>last store {when(record.get('at'))}: {esc(record.get('what'))}"
    else:
        outcome = (
            f"<td class=failed>last store {when(record.get('at'))} failed "
            f"({esc(record.get('what'))}), last success {when(record.get('last_success'))}: "
            f"{folded(str(record.get('error')))}"
        )
    return f"<tr><th>{esc(kind)} {esc(name)}</th>{outcome}</td></tr>"


ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def in_page_time(text: str) -> str:
    """A text (health's reason) with its ISO 8601 times written as the page writes times."""
    return ISO_TIME.sub(lambda found: when(found.group(0)), text)


def generation(state: dict[str, Any]) -> tuple[object, ...]:
    """Changes when a run or a job ends: the listing cached before is then stale."""
    jobs = state.get("jobs") or {}
    ended = sorted(
        (str(kind), str(record.get("last_attempt")))
        for kind, record in jobs.items()
        if isinstance(record, dict)
    )
    return (str((state.get("last_run") or {}).get("finished")), *ended)


def overview_row(
    database: str,
    newest: Shown | None,
    record: dict[str, Any],
    next_run: object,
    now: pendulum.DateTime,
) -> tuple[int, str, str]:
    """(rank, name, row): failed first, then warnings, then the rest."""
    if record.get("last_ok") is False:
        rank, result = PROBLEM, f"<td class=failed>failed at {when(record.get('last_attempt'))}"
    elif record.get("size_drop"):
        rank, result = WARNING, f"<td class=warn>{folded(str(record['size_drop']))}"
    elif newest is None:
        rank, result = WARNING, "<td class=warn>no backup in the bucket"
    else:
        rank, result = FINE, "<td class=ok>ok"
    created = newest.created if newest is not None else record.get("last_success")
    next_time = next_run if isinstance(next_run, str) else None
    size = human_size(newest.size) if newest is not None else "-"
    row = (
        f"<tr><td>{esc(database)}</td><td>{esc(age(created, now))}</td><td>{when(created)}</td>"
        f"<td class=num>{esc(size)}</td>{result}</td><td>{when(next_time)}</td></tr>"
    )
    return rank, database, row


class PageSource:
    def __init__(self, config: Config, destination: Destination, state: StateFile) -> None:
        self.config = config
        self.destination = destination
        self.state = state
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[object, ...], Listing] | None = None

    def bucket(self, current: tuple[object, ...]) -> Listing:
        """The bucket's listing, read again after CACHE_SECONDS or when `current` (the
        status file's generation) differs from the cached one's."""
        with self._lock:
            cached = self._cached
            if (
                cached is None
                or cached[1] != current
                or time.monotonic() - cached[0] > CACHE_SECONDS
            ):
                self._cached = cached = (time.monotonic(), current, self._read_bucket())
            return cached[2]

    def _read_bucket(self) -> Listing:
        from moonflower.catalog.logical import Catalog
        from moonflower.pitr.listing import base_backup_listing

        listing = Listing()
        try:
            storage = self.destination.storage()
            catalog = Catalog(storage, self.config.s3)
            for info in catalog.backups(details=False):
                shown = listing.backups.setdefault(info.backup.database, [])
                if len(shown) < CHART_POINTS:
                    locked = None
                    if len(shown) < LOCKS_SHOWN and self.config.s3.governance is not None:
                        locked = catalog.get(info.key).locked_until
                    backup = info.backup
                    shown.append(
                        Shown(info.key, backup.created, info.size, backup.encrypted, None, locked)
                    )
            if self.config.wal.stream or self.config.wal.basebackup_schedule is not None:
                listing.bases = base_backup_listing(storage, self.config.s3.prefix)
        except MoonflowerError as error:
            listing.error = str(error)
        return listing

    def render(self) -> str:
        return page_document(self.body())

    def body(self) -> str:
        """Everything of this configuration's page below the page's own heading."""
        state = self.state.shown() or {}
        listing = self.bucket(generation(state))
        history = state.get("databases") or {}
        for database, entries in self.state.history().items():
            history.setdefault(database, {})["history"] = entries
        timeout = self.config.backup.timeout.seconds if self.config.backup.timeout else None
        verdict = health(state or None, timeout)
        now = pendulum.now("UTC")
        parts = [
            f"<p>bucket <b>{esc(self.config.s3.bucket)}</b>, path "
            f"<b>{esc(self.config.s3.prefix or '/')}</b>; page made {when(now)}</p>",
            "<table class=summary>",
            f"<tr><th>health</th><td class={'ok' if verdict.ok else 'failed'}>"
            f"{folded(in_page_time(verdict.reason))}</td></tr>",
            f"<tr><th>next run</th><td>{when(state.get('next_run'))}</td></tr>",
        ]
        last = state.get("last_run") or {}
        if last:
            parts.append(
                f"<tr><th>last run</th><td>{when(last.get('finished'))}, exit status "
                f"{esc(last.get('status'))}</td></tr>"
            )
        for name, record in sorted((state.get("destinations") or {}).items()):
            parts.append(replica_row(name, record))
        parts.append("</table>")
        if listing.error:
            parts.append(
                f"<p class=failed>the bucket could not be listed: {folded(listing.error)}</p>"
            )
        databases = sorted(set(listing.backups) | set(history))
        parts.append(self._overview(databases, listing, history, state.get("next_run"), now))
        if listing.bases:
            parts.append("<h2>Point-in-time recovery</h2>")
            parts.append(f"<p>recoverable {pitr_window(listing.bases)}</p>")
            parts.append(recovery_timeline(listing.bases))
        for database in databases:
            parts.append(
                self._database(
                    database, listing.backups.get(database, []), history.get(database, {})
                )
            )
        return "\n".join(parts)

    @staticmethod
    def _overview(
        databases: list[str],
        listing: Listing,
        history: dict[str, Any],
        next_run: object,
        now: pendulum.DateTime,
    ) -> str:
        rows = sorted(
            overview_row(
                database,
                next(iter(listing.backups.get(database, [])), None),
                history.get(database, {}),
                next_run,
                now,
            )
            for database in databases
        )
        return (
            "<table class=overview><tr><th>database</th><th>last backup</th><th>at</th>"
            "<th>size</th><th>result</th><th>next run</th></tr>"
            + "".join(row for _, _, row in rows)
            + "</table>"
        )

    @staticmethod
    def _database(database: str, backups: list[Shown], record: dict[str, Any]) -> str:
        entries = [entry for entry in record.get("history", []) if isinstance(entry, dict)]
        durations = {
            entry.get("key"): entry.get("seconds") for entry in entries if entry.get("key")
        }
        places = {
            entry.get("key"): entry.get("stored_on")
            for entry in entries
            if entry.get("key") and isinstance(entry.get("stored_on"), list)
        }
        rows: list[tuple[float, str]] = []
        for entry in entries:
            moment = moment_of(entry.get("time"))
            if entry.get("ok") or moment is None:
                continue
            rows.append(
                (
                    moment.timestamp(),
                    f"<tr><td>{when(moment)}</td><td class=num>-</td>"
                    f"<td class=num>{duration(entry.get('seconds'))}</td>"
                    f"<td class=failed>failed: {folded(str(entry.get('error') or ''))}</td>"
                    f"<td>{esc(where(entry.get('stored_on')))}</td><td>-</td><td>-</td></tr>",
                )
            )
        for backup in backups:
            seconds = durations.get(backup.key)
            rows.append(
                (
                    backup.created.timestamp(),
                    f"<tr><td>{when(backup.created)}</td>"
                    f"<td class=num>{esc(human_size(backup.size))}</td>"
                    f"<td class=num>{duration(seconds)}</td><td class=ok>ok</td>"
                    f"<td>{esc(where(places.get(backup.key, ['primary'])))}</td>"
                    f"<td>{'yes' if backup.encrypted else 'no'}</td>"
                    f"<td>{when(backup.locked_until)}</td></tr>",
                )
            )
        rows.sort(reverse=True)
        drop = record.get("size_drop")
        warning = f"<p class=warn>{folded(str(drop))}</p>" if drop else ""
        return (
            f"<h2>{esc(database)}</h2>{warning}"
            + charts(backups, durations)
            + "<table><tr><th>time</th><th>size</th><th>duration</th><th>result</th>"
            "<th>stored on</th><th>encrypted</th><th>locked until</th></tr>"
            + "".join(row for _, row in rows)
            + "</table>"
        )


def charts(backups: list[Shown], durations: dict[Any, Any]) -> str:
    """Size and duration of the latest backups, each in a chart of its own."""
    if not backups:
        return "<p>no backup in the bucket</p>"
    shown = backups[:CHART_POINTS]
    sizes = [(backup.created, float(backup.size)) for backup in shown]
    timed = [
        (backup.created, float(durations[backup.key]))
        for backup in shown
        if isinstance(durations.get(backup.key), int | float)
    ]
    title = f"size of the last {len(sizes)} backups"
    parts = [line_chart(title, "size", sizes, size_label, nice_size_ceiling)]
    if timed:
        title = f"duration of the last {len(timed)} backups (seconds)"
        parts.append(line_chart(title, "duration", timed, seconds_label))
    return "".join(parts)
