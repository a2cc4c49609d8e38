"""Before `restore-cluster --wal-fetch-command` writes anything: the restore_command it is
about to give the server, run once the way the server will run it (by the server's user,
through the shell, with none of Moonflower's environment) on a WAL file the recovery needs.
A command that cannot work is refused up front (exit 2) instead of a recovery that quietly
promotes at the end of the base backup."""

import contextlib
import shlex
from pathlib import Path

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, StageFailed
from moonflower.core.logs import log
from moonflower.pitr.recovery_run import Account, as_account, private_directory
from moonflower.pitr.recovery_window import Window
from moonflower.proc.runner import Stage, capture

PROBE_SECONDS = 120.0


def probe_wal_fetch(
    config: Config, command: str, config_path: Path, window: Window, account: Account | None
) -> None:
    wanted = [*window.histories, *window.chain]
    who = f"the server's user ({account.name})" if account is not None else "this user"
    with private_directory(account) as scratch:
        if wanted:
            fetched = shlex.quote(str(scratch / "probe"))
            line = f"{command} wal-fetch {shlex.quote(wanted[0])} {fetched}"
        else:
            line = f"test -r {shlex.quote(str(config_path.absolute()))} && {command} --version"
        argv = as_account(account, ["env", "-i", f"PATH={clean_path()}", "sh", "-c", line])
        try:
            capture(Stage("restore_command probe", argv), timeout=PROBE_SECONDS)
        except StageFailed as error:
            raise ConfigError(
                [
                    f"--config: {who} cannot fetch WAL with the restore_command "
                    f"`{command} wal-fetch %f %p` ({error.stderr_tail or error}); make "
                    f"{config_path} readable by that user and complete (every S3_* and "
                    "ENCRYPTION_* setting), and Moonflower runnable by it"
                ]
            ) from None
        with contextlib.suppress(OSError):
            (scratch / "probe").unlink()
    log.info("restore_command checked: %s fetched %s", who, wanted[0] if wanted else "nothing")


def clean_path() -> str:
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
