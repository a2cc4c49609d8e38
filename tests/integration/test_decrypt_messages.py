"""A secret that does not fit the backup is named, with the step (issue 28, item 9)."""

import base64
from collections.abc import Iterator

import pytest

from tests.support import gpgkeys
from tests.support.gpgkeys import KeyPair
from tests.support.names import unique_name
from tests.support.runner import run_moonflower


@pytest.fixture(scope="module")
def two_keys() -> Iterator[tuple[KeyPair, KeyPair]]:
    with gpgkeys.gnupg_home() as first, gpgkeys.gnupg_home() as second:
        yield gpgkeys.generate(first), gpgkeys.generate(second, passphrase="unlock me")


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("moonflower:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("command", ["restore", "verify"])
def test_a_wrong_passphrase_names_the_setting(backup_env: dict[str, str], command: str) -> None:
    env = {**backup_env, "PG_DATABASES": "second", "ENCRYPTION_PASSPHRASE": "the right one"}
    assert run_moonflower(env=env).returncode == 0
    wrong = {**env, "ENCRYPTION_PASSPHRASE": "not the right one"}
    arguments = ["second", "--into", unique_name("mf_wrong")] if command == "restore" else []
    result = run_moonflower(command, *arguments, env=wrong)
    assert result.returncode == 1, result.stderr
    assert "ENCRYPTION_PASSPHRASE does not decrypt" in result.stderr
    assert "Bad session key" not in result.stderr.splitlines()[-1]
    if command == "restore":
        assert "step decrypt" in one_line(result.stderr)


def test_a_private_key_that_does_not_match_names_the_setting(
    backup_env: dict[str, str], two_keys: tuple[KeyPair, KeyPair]
) -> None:
    used, other = two_keys
    env = {**backup_env, "PG_DATABASES": "second", "ENCRYPTION_PUBLIC_KEY": used.public_base64}
    assert run_moonflower(env=env).returncode == 0
    mismatched = {
        **env,
        "ENCRYPTION_PRIVATE_KEY": base64.b64encode(other.secret_armored).decode(),
        "ENCRYPTION_PRIVATE_KEY_PASSPHRASE": other.passphrase or "",
    }
    result = run_moonflower("restore", "second", "--into", unique_name("mf_key"), env=mismatched)
    assert result.returncode == 1, result.stderr
    assert "ENCRYPTION_PRIVATE_KEY does not decrypt" in one_line(result.stderr)
