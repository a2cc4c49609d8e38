"""Logging: rich lines on a terminal, plain lines elsewhere, JSON for collectors; always masked."""

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator

import pendulum
from rich.console import Console
from rich.logging import RichHandler

from moonflower.redact import redactor

LOGGER_NAME = "moonflower"
log = logging.getLogger(LOGGER_NAME)

current_database: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_database", default=None
)
current_stage: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_stage", default=None
)


@contextlib.contextmanager
def database_context(name: str) -> Iterator[None]:
    token = current_database.set(name)
    try:
        yield
    finally:
        current_database.reset(token)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    token = current_stage.set(name)
    try:
        yield
    finally:
        current_stage.reset(token)


class ContextAndRedaction(logging.Filter):
    """Adds database and stage to each record and masks every known secret in its text."""

    def filter(self, record: logging.LogRecord) -> bool:
        database = current_database.get()
        record.database = redactor.mask(database) if database else None
        record.stage = current_stage.get()
        message = redactor.mask(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}: {redactor.mask(str(record.exc_info[1]))}"
        record.msg = message
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def prefix_of(record: logging.LogRecord) -> str:
    parts = [
        part for part in (getattr(record, "database", None), getattr(record, "stage", None)) if part
    ]
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
        for key in ("database", "stage"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def setup_logging(log_format: str = "text", level: str = "info") -> None:
    """Install exactly one handler on the moonflower logger; safe to call again."""
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
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
