"""Lifecycle webhooks (Healthchecks.io style): start, then success or failure, with the log.

A webhook never changes the result of a backup: a ping that fails is a warning, and the
original error of a failed run is never hidden by a failing ping.
"""

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from moonflower import __version__
from moonflower.config.model import WebhookConfig
from moonflower.core.errors import MoonflowerError, Terminated
from moonflower.core.logs import RunLog, current_cluster, log
from moonflower.core.redact import redactor
from moonflower.core.urls import mask_url

BODY_LIMIT_BYTES = 100_000
"""Healthchecks.io keeps at most 100 kB of a ping's body."""
ATTEMPTS = 3
RETRY_BUDGET_SECONDS = 20
INTERRUPTED_ATTEMPTS = 1
"""After SIGTERM there are seconds left before SIGKILL: one quick try only."""
USER_AGENT = f"moonflower/{__version__}"
WHOLE_REQUEST_FACTOR = 1
"""A whole request (connect, send, read the answer) may take this many WEBHOOK_TIMEOUTs."""


class WebhookFailed(Exception):
    """One attempt failed; `transient` says whether another attempt may help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def post(url: str, body: bytes, timeout: float) -> int:
    """One attempt, bounded as a whole: `timeout` for the entire request (connect, send,
    answer), not only for each read, so a receiver trickling a byte every few seconds cannot
    hold a run (the abandoned request ends in its daemon thread at its next socket timeout)."""
    outcome: list[int | WebhookFailed] = []
    attempt = threading.Thread(
        target=lambda: outcome.append(_post_once(url, body, timeout)),
        name="webhook",
        daemon=True,
    )
    attempt.start()
    attempt.join(WHOLE_REQUEST_FACTOR * timeout)
    if not outcome:
        raise WebhookFailed(
            f"no complete answer within {WHOLE_REQUEST_FACTOR * timeout:.0f} s", transient=True
        )
    if isinstance(outcome[0], WebhookFailed):
        raise outcome[0]
    return outcome[0]


def _post_once(url: str, body: bytes, timeout: float) -> int | WebhookFailed:
    try:
        return _request(url, body, timeout)
    except WebhookFailed as failure:
        return failure


def _request(url: str, body: bytes, timeout: float) -> int:
    import http.client  # here, in the sending thread: not on the way to pg_dump
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"User-Agent": USER_AGENT, "Content-Type": "text/plain; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        raise WebhookFailed(f"HTTP {error.code}", transient=error.code >= 500) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise WebhookFailed(f"{reason}", transient=True) from None


@dataclass
class Outcome:
    """Set by the run: whether it succeeded, and why not."""

    ok: bool = True
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    """Problems that did not fail the run (a prune that failed), reported with its result."""
    cluster: str | None = None
    """The cluster the run was of, named on the result line."""

    def fail(self, reason: str) -> None:
        self.ok = False
        self.reason = reason

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)

    def result_line(self) -> str:
        result = "result: ok" if self.ok else f"result: failed: {self.reason}"
        named = [f"cluster: {self.cluster}"] if self.cluster else []
        return "; ".join([*named, result, *self.warnings])


class Webhooks:
    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self._start_ping = threading.Thread()

    def send(self, event: str, url: str | None, body: bytes, attempts: int = ATTEMPTS) -> None:
        if url is None:
            return
        from tenacity import (  # only runs that ping load it: a backup starts without it
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            stop_after_delay,
            wait_exponential,
        )

        shown = mask_url(url)
        retrying = Retrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(RETRY_BUDGET_SECONDS),
            wait=wait_exponential(multiplier=1, max=4),
            retry=retry_if_exception(lambda error: getattr(error, "transient", False)),
            reraise=True,
        )
        try:
            status = retrying(post, url, body, self.config.timeout)
        except WebhookFailed as error:
            log.warning("%s webhook to %s failed: %s", event, shown, redactor.mask(str(error)))
            return
        log.info("%s webhook sent to %s (HTTP %d)", event, shown, status)

    @contextlib.contextmanager
    def monitor(self) -> Iterator[Outcome]:
        """Ping start; on leaving, ping success or failure with this run's log. The start ping
        goes out beside the run (the dump need not wait for a slow receiver) and always
        before the run's last ping."""
        run_log = RunLog(BODY_LIMIT_BYTES)
        outcome = Outcome(cluster=current_cluster.get())
        with run_log.attached():
            self._start_ping = threading.Thread(
                target=self.send, args=("start", self.config.start, b""), daemon=True
            )
            self._start_ping.start()
            try:
                yield outcome
            except (Terminated, KeyboardInterrupt) as error:
                name = "SIGTERM" if isinstance(error, Terminated) else "SIGINT"
                outcome.fail(f"interrupted by {name}; the run was abandoned")
                self._finish(outcome, run_log, INTERRUPTED_ATTEMPTS)
                raise
            except MoonflowerError as error:
                outcome.fail(str(error))
                self._finish(outcome, run_log, ATTEMPTS)
                raise
            except Exception as error:  # a bug or the machine: the failure is still reported
                outcome.fail(
                    f"unexpected error: {redactor.mask(str(error)) or type(error).__name__}"
                )
                self._finish(outcome, run_log, ATTEMPTS)
                raise
            self._finish(outcome, run_log, ATTEMPTS)

    def _finish(self, outcome: Outcome, run_log: RunLog, attempts: int) -> None:
        interrupted = attempts == INTERRUPTED_ATTEMPTS  # seconds left before SIGKILL
        self._start_ping.join(self.config.timeout if interrupted else None)
        run_log.append(outcome.result_line())
        body = run_log.text() if self.config.post_logs else b""
        if outcome.ok:
            self.send("success", self.config.success, body, attempts)
        else:
            self.send("failure", self.config.failure, body, attempts)
