"""What a restore needs to know of the server before it loads, asked in a thread while the
backup downloads: the server's version, the client that will load (psql or pg_restore, at
least as new as the server), and whether the target exists and what it holds. Only reads:
the target is created, dropped or loaded after the backup has been read to the end."""

import threading
from dataclasses import dataclass
from pathlib import Path

from moonflower.errors import MoonflowerError, RestoreError
from moonflower.postgres.clients import ClientTool, newest_client
from moonflower.postgres.queries import ServerVersion
from moonflower.postgres.server import Server


@dataclass(frozen=True)
class TargetState:
    version: ServerVersion
    loader: ClientTool
    exists: bool
    contents: dict[str, int]
    """How many user objects of each kind the target holds (only kinds it has)."""


class TargetSurvey:
    def __init__(self, server: Server, target: str, loader: str, configured: Path | None) -> None:
        self._server = server
        self._target = target
        self._loader = loader
        self._configured = configured
        self._state: TargetState | None = None
        self._error: MoonflowerError | None = None
        self._thread = threading.Thread(target=self._ask, name="target-survey", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        try:
            version = self._server.version()
            loader = newest_client(self._loader, version, self._configured)
            exists = self._server.exists(self._target)
            contents = self._server.contents(self._target) if exists else {}
            self._state = TargetState(version, loader, exists, contents)
        except MoonflowerError as error:
            self._error = error

    def state(self) -> TargetState:
        """The answers, waiting for them; a failure is the target step's."""
        self._thread.join()
        if self._error is not None:
            raise RestoreError("target", str(self._error))
        assert self._state is not None
        return self._state
