"""Logging: rich lines on a terminal, plain lines elsewhere, JSON for collectors; always masked."""

import collections
import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import pendulum
from pendulum.tz import local_timezone

from moonflower.core.redact import redactor

if TYPE_CHECKING:
    from rich.console import Console

LOGGER_NAME = "moonflower"
LOCAL_TIME_FORMAT = "YYYY-MM-DD HH:mm:ss zz"
log = logging.getLogger(LOGGER_NAME)

current_database: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_database", default=None
)
current_cluster: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_cluster", default=None
)
"""The cluster ([cluster.<name>]) a log line belongs to, when several are configured."""
current_step: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_step", default=None
)
"""The step of the run a log line belongs to (connect, dump, upload, ...): not to be
confused with a pipeline's stages, the processes joined by pipes."""


@contextlib.contextmanager
def _bound(variable: contextvars.ContextVar[str | None], value: str) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def cluster_context(name: str | None) -> contextlib.AbstractContextManager[None]:
    """Log lines inside name this cluster (nothing when there are no clusters)."""
    return contextlib.nullcontext() if name is None else _bound(current_cluster, name)


def database_context(name: str) -> contextlib.AbstractContextManager[None]:
    """Log lines inside name this database."""
    return _bound(current_database, name)


def step(name: str) -> contextlib.AbstractContextManager[None]:
    """Log lines inside name this step of the run."""
    return _bound(current_step, name)


class ContextAndRedaction(logging.Filter):
    """Adds database and step to each record and masks every known secret in its text."""

    def filter(self, record: logging.LogRecord) -> bool:
        database = current_database.get()
        record.database = redactor.mask(database) if database else None
        record.cluster = current_cluster.get()
        record.step = current_step.get()
        message = redactor.mask(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}: {redactor.mask(str(record.exc_info[1]))}"
        record.msg = message
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def local_time(moment: datetime) -> str:
    """A moment as operators read it: local wall-clock time with the zone's abbreviation."""
    return pendulum.instance(moment).in_timezone(local_timezone()).format(LOCAL_TIME_FORMAT)


def prefix_of(record: logging.LogRecord) -> str:
    fields = ("cluster", "database", "step")
    parts = [part for part in (getattr(record, name, None) for name in fields) if part]
    return f"[{' / '.join(parts)}] " if parts else ""


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = pendulum.from_timestamp(record.created, tz="local").format("YYYY-MM-DD HH:mm:ss")
        return f"{when} {record.levelname:<7} {prefix_of(record)}{record.getMessage()}"


class RichPrefixFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{prefix_of(record)}{record.getMessage()}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": pendulum.from_timestamp(record.created, tz="UTC").isoformat(),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for key in ("cluster", "database", "step"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False)


def stderr_console() -> "Console":
    from rich.console import Console  # only on a terminal: plain logs need no rich at all

    return Console(stderr=True, highlight=False, soft_wrap=True)


def setup_logging(log_format: str = "text", level: str = "info") -> None:
    """Install exactly one handler on the moonflower logger; safe to call again."""
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(
            console=stderr_console(),
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="%H:%M:%S",
        )
        handler.setFormatter(RichPrefixFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter())
    handler.addFilter(ContextAndRedaction())
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False
    # sh logs every command line at INFO; those may carry names we never want echoed.
    logging.getLogger("sh").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("boto3").setLevel(logging.WARNING)


class RunLog(logging.Handler):
    """This run's log as plain text, the end kept when it grows past `limit` bytes."""

    CUT_NOTICE = "[the start of this log was cut to keep the last {limit} bytes]\n"

    def __init__(self, limit: int) -> None:
        super().__init__(logging.DEBUG)
        self.limit = limit
        self.lines: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.cut = False
        self.setFormatter(PlainFormatter())
        self.addFilter(ContextAndRedaction())
        self.cluster = current_cluster.get()
        """Clusters run at once in one process: this run's log holds its own cluster's."""
        self.addFilter(lambda record: getattr(record, "cluster", None) == self.cluster)

    def emit(self, record: logging.LogRecord) -> None:
        self.append(self.format(record))

    @property
    def budget(self) -> int:
        """Bytes left for log lines once the cut notice is accounted for."""
        return self.limit - len(self.CUT_NOTICE.format(limit=self.limit).encode())

    def append(self, line: str) -> None:
        encoded = (redactor.mask(line) + "\n").encode("utf-8")
        self.lines.append(encoded)
        self.size += len(encoded)
        while self.size > self.budget and len(self.lines) > 1:
            self.size -= len(self.lines.popleft())
            self.cut = True

    def text(self) -> bytes:
        """At most `limit` bytes of UTF-8: the notice if the start was cut, then the end."""
        body = b"".join(self.lines)
        cut = self.cut
        if len(body) > self.budget:  # one line longer than the whole budget
            body = body[-self.budget :].decode("utf-8", "ignore").encode("utf-8")
            cut = True
        if cut:
            return self.CUT_NOTICE.format(limit=self.limit).encode() + body
        return body

    @contextlib.contextmanager
    def attached(self) -> Iterator["RunLog"]:
        log.addHandler(self)
        try:
            yield self
        finally:
            log.removeHandler(self)
