"""Running bin/moonflower as a user would: a subprocess with environment variables only."""

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[2]
MOONFLOWER = CHECKOUT / "bin" / "moonflower"
RUN_TIMEOUT_SECONDS = 180
OWN_PREFIXES = ("PG", "S3_", "AWS_", "MOONFLOWER_", "LOG_", "BACKUP_", "ENCRYPTION_", "WEBHOOK_")


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_PREFIXES)}
    env.pop("SCHEDULE", None)
    # Never let boto3 probe the instance metadata service: tests talk to loopback only.
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(extra)
    return env


def moonflower_command(*args: str, wrapper: Sequence[str] = ()) -> list[str]:
    """bin/moonflower with `args`, run by `wrapper` when given (e.g. `unshare ...`)."""
    return [*wrapper, str(MOONFLOWER), *args]


def start_moonflower(
    *args: str,
    env: Mapping[str, str],
    text: bool = True,
    quiet: bool = False,
    wrapper: Sequence[str] = (),
) -> subprocess.Popen[Any]:
    """bin/moonflower in the background; its output collected through pipes, or dropped
    when `quiet` (nobody reads it, so a full pipe must not stall it)."""
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        moonflower_command(*args, wrapper=wrapper),
        env=clean_environment(env),
        stdout=output,
        stderr=output,
        text=text,
    )


def run_moonflower(
    *args: str,
    env: Mapping[str, str],
    timeout: float = RUN_TIMEOUT_SECONDS,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        moonflower_command(*args, wrapper=wrapper),
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def backed_up(env: Mapping[str, str], **settings: str) -> None:
    """One backup run with `settings` over `env`, which must succeed."""
    result = run_moonflower(env={**env, **settings})
    assert result.returncode == 0, result.stderr
