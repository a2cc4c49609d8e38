"""Which configured values the redactor masks: every secret, what was derived from one, and
the tokens in webhook URLs."""

from moonflower.config import settings as s
from moonflower.config.sources import Layers
from moonflower.config.values import KeyBlock
from moonflower.core.redact import redactor
from moonflower.core.urls import TOKEN_LIKE, url_secrets


def register_secrets(layers: Layers, s3_secret: str | None, private_key: KeyBlock | None) -> None:
    """The one place secrets reach the redactor: every secret setting as given, what was
    derived from them (the old quick start's secret, the decoded private key), and the
    tokens in webhook URLs."""
    webhooks = (s.WEBHOOK_START, s.WEBHOOK_SUCCESS, s.WEBHOOK_FAILURE, s.METRICS_PUSHGATEWAY)
    for setting in s.ALL_SETTINGS:
        raw = layers.get(setting) if setting.secret else None
        if raw is not None and isinstance(raw.value, str):
            redactor.add(raw.value)
    redactor.add(s3_secret)
    for setting in webhooks:
        raw = layers.get(setting)
        for secret in url_secrets(raw.value) if raw and isinstance(raw.value, str) else []:
            redactor.add(secret)
    notify = layers.get(s.NOTIFY_URLS)
    if notify is not None:
        urls = notify.value.split() if isinstance(notify.value, str) else notify.value
        for url in urls if isinstance(urls, list) else []:
            redactor.add(str(url))
            for secret in [*url_secrets(str(url)), *apprise_tokens(str(url))]:
                redactor.add(secret)
    if private_key is not None:
        redactor.add(private_key.data.decode("utf-8", "replace"))


def apprise_tokens(url: str) -> list[str]:
    """Apprise URLs often carry a token where a host would be (`tgram://<bot token>/<chat>`)."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return [host] if TOKEN_LIKE.fullmatch(host.replace(":", "")) else []
