"""The process entry point: take Moonflower's settings out of the environment first.

Libraries may start helper processes that inherit `os.environ` (croniter, on import, makes
Python's platform module run `file`). Our own settings, secrets among them, are copied and
then removed from `os.environ` before anything else is imported, so no child can see them.
"""

import os
import sys

from moonflower.config.settings import ALL_SETTINGS, S3_KEY_ID_LEGACY

OWN_NAMES = frozenset(
    [setting.env for setting in ALL_SETTINGS]
    + [setting.env_file for setting in ALL_SETTINGS if setting.has_file_twin]
    + [S3_KEY_ID_LEGACY, "MOONFLOWER_CONFIG"]
)


def take_settings() -> dict[str, str]:
    """A copy of the whole environment; Moonflower's own variables leave os.environ."""
    environment = dict(os.environ)
    for name in OWN_NAMES & set(os.environ):
        del os.environ[name]
    return environment


def run() -> None:
    environment = take_settings()
    from moonflower.cli import main

    sys.exit(main(environ=environment))
