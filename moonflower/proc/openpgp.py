"""Recognising OpenPGP messages from their first packet (RFC 4880, section 4.2), so an
encrypted artifact is checked after a dump and its kind known before a restore."""

from pathlib import Path

from moonflower.core.errors import DumpError

PUBLIC_KEY_SESSION_KEY_TAG = 1
SYMMETRIC_SESSION_KEY_TAG = 3
SESSION_KEY_TAGS = (PUBLIC_KEY_SESSION_KEY_TAG, SYMMETRIC_SESSION_KEY_TAG)
"""An encrypted message starts with one of these session key packets."""


def packet_tag(first: int) -> int | None:
    """The tag of an OpenPGP packet from its first byte; None when it is not a packet."""
    if not first & 0x80:
        return None
    return first & 0x3F if first & 0x40 else (first >> 2) & 0x0F


def check_encrypted_artifact(path: Path) -> None:
    """The dump gpg wrote must be non-empty and start like an encrypted OpenPGP message."""
    if path.stat().st_size == 0:
        raise DumpError("the dump is empty (0 bytes)")
    with path.open("rb") as handle:
        first = handle.read(1)[0]
    if packet_tag(first) not in SESSION_KEY_TAGS:
        raise DumpError("the encrypted dump does not start with an OpenPGP session key packet")
