import pytest

from moonflower.core.logs import RunLog
from moonflower.core.urls import mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/fail",
            "https://hc-ping.com/********/fail",
        ),
        (
            "https://user:pass@hooks.example/x?token=abc&n=1",
            "https://********@hooks.example/x?token=********&n=********",
        ),
        ("http://127.0.0.1:8080/ping", "http://127.0.0.1:8080/ping"),
    ],
)
def test_urls_are_masked_for_logs(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_long_log_keeps_its_end_within_the_limit() -> None:
    run_log = RunLog(limit=100_000)
    for number in range(20_000):
        run_log.append(f"line {number:06d} " + "é" * 20)

    body = run_log.text()

    assert len(body) <= 100_000
    assert body.startswith(b"[the start of this log was cut")
    assert body.rstrip().endswith(b"line 019999 " + "é".encode() * 20)
    assert b"line 000000" not in body
    body.decode("utf-8")


def test_a_short_log_is_kept_whole() -> None:
    run_log = RunLog(limit=100_000)
    run_log.append("only line")

    assert run_log.text() == b"only line\n"


def test_one_enormous_line_is_cut_to_fit() -> None:
    run_log = RunLog(limit=1000)
    run_log.append("ü" * 5000)

    body = run_log.text()

    assert len(body) <= 1000
    body.decode("utf-8")


def test_a_receiver_trickling_its_answer_cannot_hold_a_run() -> None:
    """One byte a second keeps every read alive; the whole request is still bounded."""
    import time

    from moonflower.config.model import WebhookConfig
    from moonflower.reporting.webhooks import WHOLE_REQUEST_FACTOR, Webhooks
    from tests.support.webhookserver import TRICKLE, TRICKLE_LINE, WebhookReceiver

    timeout = 2
    with WebhookReceiver([TRICKLE]) as receiver:
        url = receiver.url("/ping")
        started = time.monotonic()
        Webhooks(WebhookConfig(success=url, timeout=timeout)).send("success", url, b"", 1)
        elapsed = time.monotonic() - started

    assert elapsed < WHOLE_REQUEST_FACTOR * timeout + 2
    assert elapsed < len(TRICKLE_LINE) / 2


def test_an_unexpected_error_still_sends_the_failure_webhook_with_its_reason() -> None:
    from moonflower.config.model import WebhookConfig
    from moonflower.reporting.webhooks import Webhooks
    from tests.support.webhookserver import WebhookReceiver

    with WebhookReceiver() as receiver:
        config = WebhookConfig(
            start=receiver.url("/start"), failure=receiver.url("/fail"), post_logs=True
        )
        with pytest.raises(RuntimeError), Webhooks(config).monitor():
            raise RuntimeError("No space left on device")

    assert receiver.paths() == ["/start", "/fail"]
    assert (
        receiver.received[1]
        .body.rstrip()
        .endswith(b"result: failed: unexpected error: No space left on device")
    )


def test_webhook_url_tokens_are_masked_wherever_they_appear() -> None:
    """Not only in the URL as a whole: an error message may quote just the path."""
    from moonflower.config.loader import load_config
    from moonflower.core.redact import MASK, redactor
    from tests.support.settings import REQUIRED

    token = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"
    load_config(
        {
            **REQUIRED,
            "WEBHOOK_FAILURE": f"https://hc-ping.com/{token}/fail",
            "WEBHOOK_SUCCESS": "https://hooks.example/ping?key=query-secret-value",
        }
    )

    assert redactor.mask(f"POST /{token}/fail refused") == f"POST /{MASK}/fail refused"
    assert redactor.mask("key=query-secret-value") == f"key={MASK}"
