"""The `[metrics]` and `[notify]` settings and the size check of `[backup]`: how operators
see the runs without reading logs."""

import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from moonflower.config import settings as s
from moonflower.config.model import (
    DEFAULT_SIZE_DROP_THRESHOLD,
    MonitoringConfig,
    NotifyOn,
    SizeDrop,
)
from moonflower.config.sources import RawValue
from moonflower.config.values import (
    HIDDEN_URL,
    http_url,
    member_of,
    port_number,
    secret_text,
    text,
    user_path,
    words,
)

if TYPE_CHECKING:
    from pathlib import Path

    from moonflower.config.loader import Validator

ADDRESS = re.compile(r"(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]+)")
MIN_TOKEN_LENGTH = 16
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")
DECIMAL = re.compile(r"[0-9]*\.?[0-9]+")


def metrics_address(raw: RawValue) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (every interface)."""
    value = text(raw)
    match = ADDRESS.fullmatch(value)
    if match is None:
        raise ValueError(f'expected host:port such as "127.0.0.1:9187", got "{value}"')
    host = match["v6"] or match["host"] or "0.0.0.0"
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f'"{host}" is not an IP address (or localhost)') from None
    port = port_number(RawValue(match["port"], raw.origin))
    return host, port


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def textfile_path(raw: RawValue) -> "Path":
    path = user_path(text(raw))
    if path.suffix != ".prom":
        raise ValueError(f"{path}: node_exporter's textfile collector reads only *.prom files")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not a directory")
    return path


def pushgateway_url(raw: RawValue) -> str:
    value = text(raw)
    http_url(value, HIDDEN_URL)
    return value


def metrics_token(raw: RawValue) -> str:
    value = secret_text(raw)
    if len(value) < MIN_TOKEN_LENGTH or any(char.isspace() for char in value):
        raise ValueError(
            f"use at least {MIN_TOKEN_LENGTH} characters without spaces (a random token)"
        )
    return value


def notify_urls(with_apprise: bool) -> Callable[[RawValue], tuple[str, ...]]:
    """Space-separated (or a TOML list of) Apprise URLs. With `with_apprise` (the commands
    that notify, and `check`), each must be one Apprise understands; Apprise is loaded only
    then (about half a second, too much for every `health` of a container)."""

    def parse(raw: RawValue) -> tuple[str, ...]:
        urls = words(raw, "Apprise URLs separated by spaces")
        if not urls:
            raise ValueError("no URL given")
        if with_apprise:
            import logging

            import apprise

            logging.getLogger("apprise").setLevel(logging.CRITICAL)  # it would log the URLs
        for position, url in enumerate(urls, start=1):
            scheme = url.split("://", 1)[0] if SCHEME.fullmatch(url) else None
            if scheme is None or (with_apprise and not apprise.Apprise().add(url)):
                shown = f'"{scheme}://"' if scheme else "it"
                raise ValueError(
                    f"URL {position} is not one Apprise can use (scheme {shown}); see "
                    "https://github.com/caronc/apprise/wiki for the forms"
                )
        return tuple(urls)

    return parse


def fraction(raw: RawValue) -> float:
    """ "50%" or 0.5: a share strictly between 0 and 1."""
    value = raw.value
    match = PERCENT.fullmatch(value.strip()) if isinstance(value, str) else None
    try:
        if match:
            share = float(match[1]) / 100
        elif isinstance(value, str) and not DECIMAL.fullmatch(value.strip()):
            share = -1.0
        else:
            share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0 < share < 1:
        raise ValueError(f'expected a share such as "50%" or 0.5, got "{value}"')
    return share


def monitoring_config(validator: "Validator", notifying: bool = True) -> MonitoringConfig:
    address = validator.optional(s.METRICS_ADDRESS, metrics_address, None)
    token = validator.optional(s.METRICS_TOKEN, metrics_token, None)
    if address is not None and not is_loopback(address[0]) and token is None:
        validator.problems.append(
            f"{s.METRICS_TOKEN.env}: required when {s.METRICS_ADDRESS.env} is not a loopback "
            f'address ("{address[0]}"): the page and the metrics would be open to the network'
        )
    return MonitoringConfig(
        metrics_host=address[0] if address else None,
        metrics_port=address[1] if address else 0,
        metrics_textfile=validator.optional(s.METRICS_TEXTFILE, textfile_path, None),
        metrics_pushgateway=validator.optional(s.METRICS_PUSHGATEWAY, pushgateway_url, None),
        metrics_token=token,
        notify_urls=validator.optional(s.NOTIFY_URLS, notify_urls(notifying), ()),
        notify_on=validator.optional(s.NOTIFY_ON, member_of(NotifyOn), NotifyOn.FAILURE),
        size_drop=validator.optional(s.BACKUP_SIZE_DROP, member_of(SizeDrop), SizeDrop.WARN),
        size_drop_threshold=validator.optional(
            s.BACKUP_SIZE_DROP_THRESHOLD, fraction, DEFAULT_SIZE_DROP_THRESHOLD
        ),
    )
