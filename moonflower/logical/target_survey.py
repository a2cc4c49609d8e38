"""What a restore needs to know of the server before it loads, asked in a thread while the
backup downloads: the server's version, the client that will load (psql or pg_restore, at
least as new as the server), and whether the target exists and what it holds.

The target itself is not touched before the backup has been read to the end. When it does
not exist, an empty database under a name of its own (`moonflower_restore_<hex>`) is made
meanwhile, and renamed to the target once the backup proved complete (dropped otherwise):
creating a database takes a noticeable share of restoring a small one."""

import dataclasses
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from moonflower.core.errors import MoonflowerError, RestoreError
from moonflower.core.logs import log
from moonflower.postgres.clients import ClientTool, newest_client, warm_up
from moonflower.postgres.queries import ServerVersion
from moonflower.postgres.server import Server

SCRATCH_PREFIX = "moonflower_restore_"
DISCARD_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class TargetState:
    version: ServerVersion
    loader: ClientTool
    exists: bool
    contents: dict[str, int]
    """How many user objects of each kind the target holds (only kinds it has)."""
    scratch: str | None = None
    """The empty database made for a target that does not exist, to be renamed to it."""


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
            warm_up(self._loader, self._configured, every=True)
            version = self._server.version()
            loader = newest_client(self._loader, version, self._configured)
            exists = self._server.exists(self._target)
            contents = self._server.contents(self._target) if exists else {}
            self._state = TargetState(version, loader, exists, contents)
            if not exists:
                scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(8)}"
                self._server.create(scratch)
                self._state = TargetState(version, loader, exists, contents, scratch)
        except MoonflowerError as error:
            self._error = error

    def state(self) -> TargetState:
        """The answers, waiting for them; a failure is the target step's."""
        self._thread.join()
        if self._error is not None:
            raise RestoreError("target", str(self._error))
        assert self._state is not None
        return self._state

    def take_scratch(self) -> None:
        """The scratch database became the target: nothing is left to clean up."""
        if self._state is not None:
            self._state = dataclasses.replace(self._state, scratch=None)

    def discard(self) -> None:
        """Drop the scratch database if it was not taken (the restore stopped before)."""
        self._thread.join(DISCARD_WAIT_SECONDS)
        scratch = self._state.scratch if self._state is not None else None
        if self._thread.is_alive():
            log.warning(
                "the server did not answer within %.0f s; a database named %s<hex> it may "
                "still create is not the restore's target and can be dropped",
                DISCARD_WAIT_SECONDS,
                SCRATCH_PREFIX,
            )
        if scratch is None:
            return
        try:
            self._server.drop(scratch)
        except MoonflowerError as error:
            log.warning("the scratch database %s was not dropped: %s", scratch, error)
