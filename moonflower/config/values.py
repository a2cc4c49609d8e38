"""Parsers for single setting values: each takes a RawValue and returns a typed value or
raises ValueError with a message for the operator (the caller adds the setting's name)."""

import base64
import binascii
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

from pendulum.tz import local_timezone

from moonflower.config.cron import CronError, CronSchedule, parse_cron
from moonflower.config.durations import Period, parse_period
from moonflower.config.sources import RawValue

E = TypeVar("E", bound=StrEnum)
POSTGRES_MAX_NAME_BYTES = 63
MIN_PASSPHRASE_LENGTH = 8
ALL_DATABASES = "*"
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
ARMOR_START = "-----BEGIN PGP"
HIDDEN_URL = "the URL"
"""How a URL that may hold a token is named in messages."""
REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass(frozen=True)
class KeyBlock:
    data: bytes
    """The key as given: ASCII-armored text or binary OpenPGP packets."""
    origin: str
    """The setting it came from, for error messages."""


def text(raw: RawValue) -> str:
    if not isinstance(raw.value, str):
        raise ValueError(f"expected a string, got {type(raw.value).__name__}")
    if not raw.value.strip():
        raise ValueError("must not be empty")
    return raw.value.strip()


def secret_text(raw: RawValue) -> str:
    if not isinstance(raw.value, str):
        raise ValueError("expected a string")
    if raw.value == "":
        raise ValueError("must not be empty")
    return raw.value


def ascii_number(text: str) -> bool:
    """Digits 0-9 only: `int()` and `\\d` also take other scripts' digits (`٣` is 3)."""
    return text.isascii() and text.isdigit()


def port_number(raw: RawValue) -> int:
    value = raw.value
    if isinstance(value, str) and ascii_number(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError(f'expected a port number, got "{raw.value}"')
    return value


def whole_number(low: int, high: int) -> Callable[[RawValue], int]:
    def parse(raw: RawValue) -> int:
        value = raw.value
        if isinstance(value, str) and ascii_number(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f'expected a whole number from {low} to {high}, got "{raw.value}"')
        return value

    return parse


def one_of(choices: Sequence[str]) -> Callable[[RawValue], str]:
    def parse(raw: RawValue) -> str:
        value = text(raw).lower()
        if value not in choices:
            raise ValueError(f'expected one of {", ".join(choices)}, got "{raw.value}"')
        return value

    return parse


def member_of(kind: type[E]) -> Callable[[RawValue], E]:
    """One of an enumeration's values, case-insensitive."""
    choices = one_of([member.value for member in kind])
    return lambda raw: kind(choices(raw))


def words(raw: RawValue, expected: str) -> list[str]:
    """Words separated by spaces (the environment) or a TOML list of strings."""
    if isinstance(raw.value, str):
        return raw.value.split()
    if isinstance(raw.value, list) and all(isinstance(item, str) for item in raw.value):
        return [item.strip() for item in raw.value if item.strip()]
    raise ValueError(f"expected {expected}")


def database_names(raw: RawValue) -> tuple[str, ...]:
    names = words(raw, "a list of database names")
    if not names:
        raise ValueError("no database names given")
    if ALL_DATABASES in names and len(names) > 1:
        raise ValueError(f'"{ALL_DATABASES}" means every database: give it alone')
    for name in names:
        if len(name.encode("utf-8")) > POSTGRES_MAX_NAME_BYTES:
            raise ValueError(f'database name "{name}" is longer than 63 bytes')
        if "\x00" in name:
            raise ValueError("database names cannot contain NUL characters")
    return tuple(dict.fromkeys(names))


def name_patterns(raw: RawValue) -> tuple[str, ...]:
    if isinstance(raw.value, str):
        return tuple(raw.value.split())
    if isinstance(raw.value, list) and all(isinstance(item, str) for item in raw.value):
        return tuple(item for item in raw.value if item.strip())
    raise ValueError("expected a list of database names or patterns")


def http_url(value: str, shown: str) -> SplitResult:
    """An http(s) URL every part of which the HTTP clients can use; `shown` names it in
    messages (a webhook URL may hold a token, so it is not repeated)."""
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValueError(f"{shown} contains spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        got = "" if shown == HIDDEN_URL else f", got {shown}"
        raise ValueError(f"expected an http:// or https:// URL{got}")
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when it is read)
    except ValueError:
        raise ValueError(f"{shown} has an invalid port (1-65535)") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{shown} holds credentials (user:password@), which cannot be used there; "
            "put a token in the path or the query instead"
        )
    return parts


def endpoint_url(raw: RawValue) -> str:
    value = text(raw)
    parts = http_url(value, HIDDEN_URL if "@" in value else f'"{value}"')
    if parts.query or parts.fragment:
        raise ValueError(f'"{value}" has a query or fragment; give scheme, host and port')
    return value.rstrip("/")


def region_name(raw: RawValue) -> str:
    value = text(raw)
    if not REGION.fullmatch(value):
        raise ValueError(f'"{value}" is not a region name such as eu-central-1 or us-west-1')
    return value


def s3_prefix(raw: RawValue) -> str:
    if not isinstance(raw.value, str):
        raise ValueError("expected a string")
    parts = [part for part in raw.value.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f'"{raw.value}" holds "." or ".." segments; give a plain folder path')
    if any(part != part.strip() for part in parts):
        raise ValueError(f'"{raw.value}" has spaces around a folder name')
    return "/".join(parts)


def user_path(value: str) -> Path:
    """`~` expanded; an unknown `~user` is a plain error, not a crash."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ValueError(f'cannot expand "{value}": no such user') from None


def looked_up(path: Path, question: Callable[[Path], bool]) -> bool:
    """`question` (is_dir, is_file) about a path the system may refuse to look at at all
    (a name too long, for example): such a path is an error for the operator, not a crash."""
    try:
        return question(path)
    except OSError as error:
        raise ValueError(f"cannot use this path ({error.strerror or error}): {path}") from None


def executable_path(raw: RawValue) -> Path:
    path = user_path(text(raw))
    candidate = path / "pg_dump" if looked_up(path, Path.is_dir) else path
    if not (looked_up(candidate, Path.is_file) and os.access(candidate, os.X_OK)):
        raise ValueError(f"{candidate} is not an executable pg_dump")
    return candidate


def missing(path: Path) -> bool:
    """Nothing at all is there (not even a dangling link); other errors are not "missing"."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def writable_directory(raw: RawValue) -> Path:
    """An existing writable directory; a missing one whose parent exists is made (0700, as
    on a new host that has never run Moonflower)."""
    path = user_path(text(raw))
    if missing(path) and looked_up(path.parent, Path.is_dir):
        try:
            os.mkdir(path, 0o700)
        except OSError as error:
            raise ValueError(f"{path} is missing and cannot be made: {error.strerror}") from None
    if not looked_up(path, Path.is_dir):
        raise ValueError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{path} is not writable")
    return path


def period(raw: RawValue) -> Period:
    return parse_period(text(raw))


def webhook_url(raw: RawValue) -> str:
    value = text(raw)
    http_url(value, HIDDEN_URL)
    return value


def any_value_is_on(raw: RawValue) -> bool:
    """The original image turned WEBHOOK_POST_LOGS on with any value; we also accept "off"."""
    if isinstance(raw.value, bool):
        return raw.value
    return text(raw).lower() not in FALSE_WORDS


def boolean(raw: RawValue) -> bool:
    if isinstance(raw.value, bool):
        return raw.value
    value = text(raw).lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f'expected true or false, got "{raw.value}"')


def cron_schedule(raw: RawValue) -> CronSchedule:
    try:
        return parse_cron(text(raw), local_timezone())
    except CronError as error:
        raise ValueError(str(error)) from None


def passphrase(raw: RawValue) -> str:
    value = secret_text(raw)
    if len(value) < MIN_PASSPHRASE_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSPHRASE_LENGTH} characters long")
    if "\n" in value or "\r" in value:
        raise ValueError("must not contain line breaks")
    return value


def key_bytes(raw: RawValue, how_to_encode: str) -> bytes:
    """The base64 of an armored key (as the old README made it), or the armored key itself."""
    value = text(raw)
    if value.startswith(ARMOR_START):
        return value.encode("utf-8")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not valid base64 ({how_to_encode})") from None


def public_key_block(raw: RawValue) -> KeyBlock:
    data = key_bytes(raw, "encode the armored public key with `base64 -w 0 public.asc`")
    if b"PRIVATE KEY BLOCK" in data[:200]:
        raise ValueError("this is a private key; give the public key (gpg --export --armor KEY_ID)")
    return KeyBlock(data, raw.origin)


def private_key_block(raw: RawValue) -> KeyBlock:
    data = key_bytes(raw, "encode the armored private key with `base64 -w 0 private.asc`")
    if b"PRIVATE KEY BLOCK" not in data[:200]:
        raise ValueError("not an ASCII-armored private key (gpg --export-secret-keys --armor)")
    return KeyBlock(data, raw.origin)
