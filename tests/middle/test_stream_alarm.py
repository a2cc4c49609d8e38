"""A WAL stream alarm (a gap, a lost archive lease) is sent as every failed job is: the
failure webhook and a notification."""

from moonflower.daemon.physical_services import stream_alarm
from tests.middle.conftest import configured
from tests.support.waiting import eventually
from tests.support.webhookserver import WebhookReceiver


def test_a_stream_alarm_reaches_the_failure_webhook_and_the_notifications(
    backup_env: dict[str, str],
) -> None:
    with WebhookReceiver() as hooks:
        chat = hooks.url("/chat").replace("http://", "json://")
        config = configured(backup_env, WEBHOOK_FAILURE=hooks.url("/failure"), NOTIFY_URLS=chat)
        stream_alarm(config)("the WAL chain breaks after 000000010000000000000007")
        assert eventually(lambda: sorted(hooks.paths()) == ["/chat", "/failure"], 30)
        for received in hooks.received:
            assert "000000010000000000000007" in received.body.decode()
            assert "WAL stream" in received.body.decode()


def test_a_failing_webhook_does_not_stop_the_notification(backup_env: dict[str, str]) -> None:
    with WebhookReceiver(statuses=[500] * 10) as broken, WebhookReceiver() as chat:
        config = configured(
            backup_env,
            WEBHOOK_FAILURE=broken.url("/failure"),
            NOTIFY_URLS=chat.url("/chat").replace("http://", "json://"),
        )
        stream_alarm(config)("the archive's lease was taken over")
        assert eventually(lambda: chat.paths() == ["/chat"], 30)
