"""Names for databases a test creates on the session-wide server, unique per call, so tests
do not depend on their order or on running once."""

import secrets


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"
