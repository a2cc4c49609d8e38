"""The status page: per database the latest backups and a chart of their size and duration
(inline SVG, no script, no external resource), the next run, and the recoverable WAL window.
Backups come from the bucket listing (cached for a minute), durations and failed attempts
from the status file. Every text is escaped and masked."""

import html
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pendulum

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.redact import redactor
from moonflower.core.sizes import human_size
from moonflower.reporting.health import health
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import Destination

if TYPE_CHECKING:
    from moonflower.pitr.listing import ListedBase

CHART_POINTS = 30
LOCKS_SHOWN = 5
"""The newest backups of each database whose lock is read (one HEAD each)."""
CACHE_SECONDS = 60.0
WIDTH, HEIGHT, MARGIN = 640, 170, 34
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:60em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .7em;text-align:left;
border-bottom:1px solid #ddd}.ok{color:#176117}.failed{color:#a11}.warn{color:#8a5a00}
svg{background:#fafafa;border:1px solid #ddd}.size{fill:#1f5fa8}.duration{fill:#c25400}
polyline{fill:none;stroke-width:1.5}.size-line{stroke:#1f5fa8}.duration-line{stroke:#c25400}
"""


def pitr_window(bases: "list[ListedBase]") -> str | None:
    """From the oldest base backup's start to the farthest its WAL reaches, whatever order
    the listing is in (`list` gives the newest first)."""
    if not bases:
        return None
    start = min(listed.window.start for listed in bases)
    end = max(listed.window.end for listed in bases)
    return f"from {start.isoformat()} to {end.isoformat()}"


@dataclass(frozen=True)
class Shown:
    """One backup in the bucket, with what the status file knows of it."""

    key: str
    created: pendulum.DateTime
    size: int
    encrypted: bool
    seconds: float | None = None
    locked_until: pendulum.DateTime | None = None


def esc(value: object) -> str:
    return html.escape(redactor.mask(str(value)))


def when(moment: pendulum.DateTime | str | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        parsed = pendulum.parse(moment)
        if not isinstance(parsed, pendulum.DateTime):
            return esc(moment)
        moment = parsed
    return esc(moment.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss [UTC]"))


def points(values: list[float | None], top: float) -> list[tuple[float, float, float]]:
    """(x, y, value) for each known value, oldest left."""
    step = (WIDTH - 2 * MARGIN) / max(len(values) - 1, 1)
    placed = []
    for index, value in enumerate(values):
        if value is not None:
            y = HEIGHT - MARGIN - (value / top if top else 0) * (HEIGHT - 2 * MARGIN)
            placed.append((MARGIN + index * step, y, value))
    return placed


def series(name: str, values: list[float | None], label: Any) -> str:
    top = max((value for value in values if value is not None), default=0.0)
    placed = points(values, top)
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in placed)
    dots = "".join(
        f'<circle class="{name}" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{esc(label(v))}</title>'
        "</circle>"
        for x, y, v in placed
    )
    return f'<polyline class="{name}-line" points="{line}"/>{dots}'


def chart(backups: list[Shown]) -> str:
    """Size (blue) and duration (orange) of the last backups, each on its own scale."""
    ordered = list(reversed(backups[:CHART_POINTS]))
    sizes: list[float | None] = [float(b.size) for b in ordered]
    durations: list[float | None] = [b.seconds for b in ordered]
    return (
        f'<svg role="img" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f"<title>size and duration of the last {len(ordered)} backups</title>"
        + series("size", sizes, lambda v: human_size(int(v)))
        + series("duration", durations, lambda v: f"{v:.1f} s")
        + f'<text x="{MARGIN}" y="16" font-size="12">size (blue), duration (orange)</text></svg>'
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
            f"({esc(record.get('what'))}): {esc(record.get('error'))}; last success "
            f"{when(record.get('last_success'))}"
        )
    return f"<tr><th>{esc(kind)} {esc(name)}</th>{outcome}</td></tr>"


class PageSource:
    def __init__(self, config: Config, destination: Destination, state: StateFile) -> None:
        self.config = config
        self.destination = destination
        self.state = state
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, list[Shown]], str | None, str | None] | None = None

    def bucket(self) -> tuple[dict[str, list[Shown]], str | None, str | None]:
        """Backups per database (newest first), the WAL window, and a listing error."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                self._cached = (time.monotonic(), *self._read_bucket())
            return self._cached[1:]

    def _read_bucket(self) -> tuple[dict[str, list[Shown]], str | None, str | None]:
        from moonflower.catalog.logical import Catalog
        from moonflower.pitr.listing import base_backup_listing

        try:
            storage = self.destination.storage()
            catalog = Catalog(storage, self.config.s3)
            found: dict[str, list[Shown]] = {}
            for info in catalog.backups(details=False):
                shown = found.setdefault(info.backup.database, [])
                if len(shown) < CHART_POINTS:
                    locked = None
                    if len(shown) < LOCKS_SHOWN and self.config.s3.governance is not None:
                        locked = catalog.get(info.key).locked_until
                    backup = info.backup
                    shown.append(
                        Shown(info.key, backup.created, info.size, backup.encrypted, None, locked)
                    )
            window = None
            if self.config.wal.stream or self.config.wal.basebackup_schedule is not None:
                bases = base_backup_listing(storage, self.config.s3.prefix)
                window = pitr_window(bases)
            return found, window, None
        except MoonflowerError as error:
            return {}, None, str(error)

    def render(self) -> str:
        state = self.state.shown() or {}
        backups, window, error = self.bucket()
        history = state.get("databases") or {}
        for database, entries in self.state.history().items():
            history.setdefault(database, {})["history"] = entries
        timeout = self.config.backup.timeout.seconds if self.config.backup.timeout else None
        verdict = health(state or None, timeout)
        parts = [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            "<title>Moonflower</title>",
            f"<style>{STYLE}</style></head><body><h1>Moonflower</h1>",
            f"<p>bucket <b>{esc(self.config.s3.bucket)}</b>, path "
            f"<b>{esc(self.config.s3.prefix or '/')}</b>; "
            f"page made {when(pendulum.now('UTC'))}</p>",
            "<table>",
            f"<tr><th>health</th><td class={'ok' if verdict.ok else 'failed'}>"
            f"{esc(verdict.reason)}</td></tr>",
            f"<tr><th>next run</th><td>{when(state.get('next_run'))}</td></tr>",
        ]
        last = state.get("last_run") or {}
        if last:
            parts.append(
                f"<tr><th>last run</th><td>{when(last.get('finished'))}, exit status "
                f"{esc(last.get('status'))}</td></tr>"
            )
        if window:
            parts.append(f"<tr><th>point-in-time recovery</th><td>{esc(window)}</td></tr>")
        for name, record in sorted((state.get("destinations") or {}).items()):
            parts.append(replica_row(name, record))
        parts.append("</table>")
        if error:
            parts.append(f"<p class=failed>the bucket could not be listed: {esc(error)}</p>")
        for database in sorted(set(backups) | set(history)):
            parts.append(
                self._database(database, backups.get(database, []), history.get(database, {}))
            )
        parts.append("</body></html>")
        return "\n".join(parts)

    def _database(self, database: str, backups: list[Shown], record: dict[str, Any]) -> str:
        durations = {
            entry.get("key"): entry.get("seconds")
            for entry in record.get("history", [])
            if entry.get("key")
        }
        places = {
            entry.get("key"): entry.get("stored_on")
            for entry in record.get("history", [])
            if entry.get("key") and isinstance(entry.get("stored_on"), list)
        }
        backups = [
            Shown(b.key, b.created, b.size, b.encrypted, durations.get(b.key), b.locked_until)
            for b in backups
        ]
        rows: list[tuple[float, str]] = []
        for entry in record.get("history", []):
            moment = pendulum.parse(str(entry.get("time")))
            if entry.get("ok") or not isinstance(moment, pendulum.DateTime):
                continue
            rows.append(
                (
                    moment.timestamp(),
                    f"<tr><td>{when(moment)}</td><td>-</td><td>{esc(entry.get('seconds'))} s</td>"
                    f"<td class=failed>failed: {esc(entry.get('error') or '')}</td>"
                    f"<td>{esc(where(entry.get('stored_on')))}</td><td>-</td><td>-</td></tr>",
                )
            )
        for backup in backups:
            seconds = "-" if backup.seconds is None else f"{backup.seconds:.1f} s"
            rows.append(
                (
                    backup.created.timestamp(),
                    f"<tr><td>{when(backup.created)}</td><td>{esc(human_size(backup.size))}</td>"
                    f"<td>{esc(seconds)}</td><td class=ok>ok</td>"
                    f"<td>{esc(where(places.get(backup.key, ['primary'])))}</td>"
                    f"<td>{'yes' if backup.encrypted else 'no'}</td>"
                    f"<td>{when(backup.locked_until)}</td></tr>",
                )
            )
        rows.sort(reverse=True)
        drop = record.get("size_drop")
        warning = f"<p class=warn>{esc(drop)}</p>" if drop else ""
        return (
            f"<h2>{esc(database)}</h2>{warning}"
            + (chart(backups) if backups else "<p>no backup in the bucket</p>")
            + "<table><tr><th>time</th><th>size</th><th>duration</th><th>result</th>"
            "<th>stored on</th><th>encrypted</th><th>locked until</th></tr>"
            + "".join(row for _, row in rows)
            + "</table>"
        )
