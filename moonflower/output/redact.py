"""Masking of secret values wherever text leaves the process (logs, errors, webhooks)."""

import threading
from urllib.parse import quote, quote_plus

MASK = "********"
_SHORTEST_MASKED = 3


class Redactor:
    """Remembers secret values and replaces them in any text with a fixed mask."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _SHORTEST_MASKED:
            return
        variants = {secret, secret.strip(), quote(secret, safe=""), quote_plus(secret)}
        with self._lock:
            self._secrets.update(v for v in variants if len(v) >= _SHORTEST_MASKED)

    def mask(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()


redactor = Redactor()
"""The process-wide redactor: config registers every secret here as soon as it is read."""
