"""The jobs beside the logical backup runs (base backups, one-shot or on BASEBACKUP_SCHEDULE;
`verify`; `prune`), reported like a run: the status file (so `health`, `status` and the
metrics see them), the failure webhook and a notification when one fails, and the metrics
published."""

import contextlib
from collections.abc import Iterator

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.core.redact import redactor
from moonflower.core.state_dir import state_directory
from moonflower.reporting.notify import notify_all, wanted
from moonflower.reporting.state_shape import JOB_TITLES
from moonflower.reporting.status_file import StateFile


class Outcome:
    """What a job found wrong without raising (a backup that failed verification)."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def fail(self, reason: str) -> None:
        self.reason = reason


@contextlib.contextmanager
def reported(config: Config, kind: str) -> Iterator[Outcome]:
    """Around one job: its outcome recorded and sent, a failure being an exception or a
    reason given to the Outcome; the job's exception still raised."""
    outcome = Outcome()
    try:
        yield outcome
    except BaseException as error:
        reason = redactor.mask(str(error) or type(error).__name__)
        job_finished(config, kind, ok=False, error=reason)
        raise
    if outcome.reason is not None:
        job_finished(config, kind, ok=False, error=redactor.mask(outcome.reason))
    else:
        job_finished(config, kind, ok=True)


def job_finished(config: Config, kind: str, ok: bool, error: str | None = None) -> None:
    what = JOB_TITLES.get(kind, kind)
    try:
        StateFile(state_directory(config.backup)).job_finished(kind, ok, error)
    except (OSError, MoonflowerError) as problem:
        log.warning("could not write the status file: %s", problem)
    if not ok:
        log.error("%s failed: %s", what, error)
        failed(config, what, error or "")
    elif wanted(config.monitoring, ok=True):
        notify_all(config.monitoring, f"Moonflower {what} succeeded", f"{what} stored")
    publish_if_configured(config)


def publish_if_configured(config: Config) -> None:
    """The metrics' textfile and Pushgateway, after any job (the exporter loads only then)."""
    if config.monitoring.metrics_textfile or config.monitoring.metrics_pushgateway:
        from moonflower.reporting.metrics import publish_metrics

        publish_metrics(config)


def failed(config: Config, what: str, reason: str) -> None:
    from moonflower.reporting.webhooks import Webhooks

    of = f" (cluster {config.cluster})" if config.cluster else ""
    body = f"moonflower {what}{of} failed: {reason}"
    try:
        Webhooks(config.webhooks).send("failure", config.webhooks.failure, body.encode())
    except MoonflowerError as problem:
        log.warning("the failure webhook could not be sent: %s", problem)
    if wanted(config.monitoring, ok=False):
        notify_all(config.monitoring, f"Moonflower {what}{of} FAILED", body)
