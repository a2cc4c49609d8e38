"""Run ownership by lock: a live run in another process is live whatever its pid, a killed one
is not, and a lock file that disappears under a live run is put back."""

import subprocess
import sys
from pathlib import Path

from moonflower.core.ownership import RunLease, lock_name, owner_is_live
from moonflower.proc.spool import remove_stale_files

HOLDER = """
import sys
from pathlib import Path
from moonflower.core.ownership import lease
directory = Path(sys.argv[1])
lease.claim(directory)
(directory / f"moonflower-{lease.token}-leftover.part").write_text("x")
print(lease.token, flush=True)
sys.stdin.read()
"""
BOUND_SECONDS = 30


def start_holder(directory: Path) -> tuple[subprocess.Popen[str], str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert holder.stdout is not None
    return holder, holder.stdout.readline().strip()


def test_another_processes_run_is_live_until_it_is_killed(tmp_path: Path) -> None:
    holder, token = start_holder(tmp_path)
    try:
        assert owner_is_live(tmp_path, token)
        assert remove_stale_files(tmp_path) == []
        assert (tmp_path / lock_name(token)).exists()
    finally:
        holder.kill()
        holder.wait(timeout=BOUND_SECONDS)

    assert not owner_is_live(tmp_path, token)
    removed = remove_stale_files(tmp_path)
    assert [path.name for path in removed] == [f"moonflower-{token}-leftover.part"]
    assert list(tmp_path.iterdir()) == []


def test_a_run_without_its_lock_file_is_dead(tmp_path: Path) -> None:
    assert not owner_is_live(tmp_path, "run0123456789ab")


def test_a_lock_file_removed_under_a_live_run_is_put_back(tmp_path: Path) -> None:
    lease = RunLease()
    lease.claim(tmp_path)
    lock = tmp_path / lock_name(lease.token)
    lock.unlink()  # e.g. systemd-tmpfiles ageing /tmp

    lease.claim(tmp_path)

    assert lock.exists()
    lease.release()
    assert list(tmp_path.iterdir()) == []
