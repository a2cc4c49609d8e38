"""Masking of secret values wherever text leaves the process (logs, errors, webhooks).

A secret is masked as a whole value, never by cutting a word: masking the password `the`
inside "older than the server" would point straight at it. So:

- a secret that cannot be mistaken for ordinary text (8 characters or more, and not only
  letters) is masked wherever it appears;
- any other secret, however short, is masked where it stands as a value: after `=` or `:`,
  between quotes, or as a whole line (`password=ab`, `"ab"`, `user:ab@host`, a pgpass line),
  never inside running text, where it would be just another word.
"""

import re
import threading
from urllib.parse import quote, quote_plus

MASK = "********"
DISTINCTIVE_LENGTH = 8
_VALUE_BEFORE = "=:'\"`"
_VALUE_AFTER = r"""\s'"`&;,@)\]}>"""


def is_distinctive(secret: str) -> bool:
    """Could this secret never pass for a word of ordinary text?"""
    return len(secret) >= DISTINCTIVE_LENGTH and not secret.isalpha()


class Redactor:
    """Remembers secret values and replaces them in any text with a fixed mask."""

    def __init__(self) -> None:
        self._anywhere: set[str] = set()
        self._as_values: set[str] = set()
        self._value_pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        variants = {secret, secret.strip(), quote(secret, safe=""), quote_plus(secret)}
        with self._lock:
            for variant in variants:
                if not variant.strip():
                    continue  # blanks hide nothing, and masking them would garble every line
                if is_distinctive(variant):
                    self._anywhere.add(variant)
                else:
                    self._as_values.add(variant)
            self._value_pattern = None

    def mask(self, text: str) -> str:
        with self._lock:
            anywhere = sorted(self._anywhere, key=len, reverse=True)
            pattern = self._value_pattern = self._value_pattern or self._compile()
        for secret in anywhere:
            if secret in text:
                text = text.replace(secret, MASK)
        return pattern.sub(MASK, text) if self._as_values else text

    def _compile(self) -> re.Pattern[str]:
        alternatives = "|".join(
            re.escape(value) for value in sorted(self._as_values, key=len, reverse=True)
        )
        secrets = f"(?:{alternatives or '(?!)'})"
        as_value = f"(?<=[{re.escape(_VALUE_BEFORE)}]){secrets}(?=$|[{_VALUE_AFTER}])"
        return re.compile(f"{as_value}|^{secrets}$", re.MULTILINE)

    def clear(self) -> None:
        with self._lock:
            self._anywhere.clear()
            self._as_values.clear()
            self._value_pattern = None


redactor = Redactor()
"""The process-wide redactor: config registers every secret here as soon as it is read."""
