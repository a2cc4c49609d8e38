"""Notifications to chat and mail through Apprise (NOTIFY_URLS): one short message per run,
on failure or always (NOTIFY_ON). Like the webhooks, attempts are few and bounded in time,
and a notification that cannot be sent never changes the run's result."""

import logging
import threading
import time
from typing import TYPE_CHECKING

from moonflower.config.model import MonitoringConfig, NotifyOn
from moonflower.core.logs import log
from moonflower.core.redact import redactor
from moonflower.core.shutdown import leftover_threads
from moonflower.core.sizes import human_size

if TYPE_CHECKING:
    from moonflower.logical.backup import RunReport

ATTEMPTS = 2
ATTEMPT_SECONDS = 20.0
"""How long one attempt may take as a whole; Apprise's own timeouts are per request."""
WHOLE_SECONDS = ATTEMPTS * ATTEMPT_SECONDS + 5.0
"""Every notification of a run, all URLs at once, ends within this."""
WAIT_SLICE_SECONDS = 0.2
TIMEOUT_PARAMETERS = {"cto": "5", "rto": "10"}
"""Apprise's connect and read timeouts, added to each URL that does not set them."""


def message(report: "RunReport", ok: bool) -> tuple[str, str]:
    """The title and the body: result, databases with sizes and durations, the first
    failure's reason; masked."""
    of = f" of cluster {report.cluster}" if report.cluster else ""
    title = f"Moonflower backup{of} " + ("succeeded" if ok else "FAILED")
    lines = []
    for result in report.results:
        what = human_size(result.size) if result.ok else "failed"
        lines.append(f"{result.database}: {what} in {result.seconds:.1f} s")
        if result.size_drop:
            lines.append(f"  warning: {result.size_drop}")
    reasons = [report.error] if report.error else []
    reasons += [f"{r.database}: {r.error}" for r in report.failures if r.error]
    if reasons:
        lines.append(f"first failure: {reasons[0]}")
    if report.prune_error:
        lines.append(f"pruning failed: {report.prune_error}")
    return redactor.mask(title), redactor.mask("\n".join(lines) or "no database was backed up")


def with_timeouts(url: str) -> str:
    missing = [
        f"{name}={value}" for name, value in TIMEOUT_PARAMETERS.items() if f"{name}=" not in url
    ]
    if not missing:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(missing)


def send(url: str, title: str, body: str) -> bool:
    import apprise

    logging.getLogger("apprise").setLevel(logging.CRITICAL)  # its lines would hold the URLs
    sender = apprise.Apprise()
    sender.add(with_timeouts(url))
    return bool(sender.notify(title=title, body=body))


def deliver(position: int, url: str, title: str, body: str) -> bool:
    """Up to ATTEMPTS tries, each bounded. One that timed out is not repeated: it may still
    land, and a receiver must get one message per run, not two."""
    for attempt in range(1, ATTEMPTS + 1):
        outcome: list[bool] = []
        worker = threading.Thread(
            target=lambda done=outcome: done.append(send(url, title, body)),
            name="notify",
            daemon=True,
        )
        worker.start()
        worker.join(ATTEMPT_SECONDS)
        if outcome and outcome[0]:
            return True
        if worker.is_alive():
            leftover_threads.set()  # Apprise's pool thread in it would be waited for at exit
            log.warning(
                "notification %d took longer than %.0f s; not repeated", position, ATTEMPT_SECONDS
            )
            return False
        log.warning("notification %d was refused (attempt %d of %d)", position, attempt, ATTEMPTS)
    return False


def notify(config: MonitoringConfig, report: "RunReport", ok: bool) -> None:
    """Every URL at once; never raises."""
    if wanted(config, ok):
        notify_all(config, *message(report, ok))


def wanted(config: MonitoringConfig, ok: bool) -> bool:
    return bool(config.notify_urls) and not (ok and config.notify_on == NotifyOn.FAILURE)


def notify_all(config: MonitoringConfig, title: str, body: str) -> None:
    """`title` and `body` (masked here) to every URL at once; never raises."""
    title, body = redactor.mask(title), redactor.mask(body)
    results: dict[int, bool] = {}
    ended: list[int] = []
    all_ended = threading.Event()

    def one(position: int, url: str) -> None:
        try:
            results[position] = deliver(position, url, title, body)
        except Exception as error:  # a notification library's failure is never the run's
            log.warning("notification %d failed: %s", position, redactor.mask(str(error)))
            results[position] = False
        finally:
            ended.append(position)
            if len(ended) == len(config.notify_urls):
                all_ended.set()

    workers = [
        threading.Thread(target=one, args=(position, url), name=f"notify-{position}", daemon=True)
        for position, url in enumerate(config.notify_urls, start=1)
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + WHOLE_SECONDS
    try:
        # An Event, not Thread.join: a signal that interrupts join() makes Python 3.11 take a
        # thread still running for stopped.
        while not all_ended.wait(WAIT_SLICE_SECONDS) and time.monotonic() < deadline:
            pass
    finally:
        if not all_ended.is_set():
            # A receiver that never finishes must not keep the process: Apprise's pool
            # threads would be waited for at exit.
            leftover_threads.set()
    sent = sum(results.values())
    if sent == len(workers):
        log.info("notification sent to %d URL(s)", sent)
    else:
        log.error(
            "notification sent to %d of %d URL(s); the backup's result stands", sent, len(workers)
        )
