"""Credentials in URLs: which parts of a webhook URL are secrets, and the URL fit for a log."""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from moonflower.core.redact import MASK

TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-]{16,}")
FLAG_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})


def url_secrets(url: str) -> list[str]:
    """What in a webhook URL is a credential: its token-like path parts, its query values and
    user:password, so the redactor masks them wherever they show up, not only in URLs.
    (Flags such as `verbose=true` or `v=2` are left out: masking `true` in every log line
    would hide more than it protects.)"""
    parts = urlsplit(url)
    query = [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    found = [part for part in parts.path.split("/") if TOKEN_LIKE.fullmatch(part)]
    found += [value for value in query if value and not is_flag(value)]
    found += [part for part in (parts.username, parts.password) if part]
    return found


def is_flag(value: str) -> bool:
    return value.isdigit() or value.lower() in FLAG_WORDS


def mask_url(url: str) -> str:
    """The URL fit for a log line: credentials, token-like path parts and query values masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"{MASK}@{host}"
    path = "/".join(
        MASK if TOKEN_LIKE.fullmatch(segment) else segment for segment in parts.path.split("/")
    )
    query = urlencode(
        [(name, MASK) for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*"
    )
    return urlunsplit((parts.scheme, host, path, query, ""))
