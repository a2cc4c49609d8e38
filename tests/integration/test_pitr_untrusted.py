"""Point-in-time recovery with an untrusted bucket: base backups rewritten as whoever can
write to the bucket would (symbolic and hard links, device nodes, setuid files, names that
climb out, commands in postgresql.auto.conf, descriptions dated in the future, WAL of
another cluster), each refused or made harmless, through a real PostgreSQL 18 and moto."""

import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.crafted_base import (
    Member,
    StoredBase,
    adding,
    plant,
    regular,
    replacing,
    segment_header,
    special,
)
from tests.support.pgserver import DEFAULT_PASSWORD, PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server

UNPRIVILEGED = "nobody"
NOT_INSTALLED_MAJOR = 99
"""Set in a planted description: pg_verifybackup of that version does not exist, so only
the extraction itself stands between the tar and the host."""


@pytest.fixture(scope="module")
def taken(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoredBase]:
    """One real base backup (uncompressed, unencrypted) to rewrite."""
    with PgServer() as server:
        server.create_database("app")
        server.psql("CREATE TABLE ledger (n int PRIMARY KEY)", "app")
        server.psql("INSERT INTO ledger SELECT generate_series(1, 30)", "app")
        bucket = s3.new_bucket()
        spool = tmp_path_factory.mktemp("spool")
        env = base_env(s3, bucket, spool, server)
        result = run_moonflower("basebackup", env=env)
        assert result.returncode == 0, result.stderr
        yield StoredBase.read(s3, bucket)


def base_env(
    s3: S3Server, bucket: str, spool: Path, server: PgServer | None = None
) -> dict[str, str]:
    env = {
        **s3.moonflower_env(bucket, "pitr"),
        "BACKUP_SPOOL_DIR": str(spool),
        "BACKUP_STATE_DIR": str(spool),
        "BACKUP_COMPRESSION": "none",
    }
    if server is not None:
        env.update(server.moonflower_env("app"))
    return env


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory out of every restore's reach, holding a file that must stay as it is;
    open to everyone, so that only Moonflower's refusal keeps a write out."""
    place = Path(tempfile.mkdtemp(prefix="mf-out-"))
    place.chmod(0o777)
    (place / "keys").write_text("original\n")
    (place / "keys").chmod(0o666)
    yield place
    shutil.rmtree(place, ignore_errors=True)


def untouched(place: Path) -> bool:
    return sorted(p.name for p in place.iterdir()) == ["keys"] and (
        (place / "keys").read_text() == "original\n"
    )


def crafted_cases(outside_dir: str) -> dict[str, object]:
    keys = f"{outside_dir}/keys"
    return {
        "staging-link": adding(
            special("pg_wal/.000000010000000000000009.moonflower", tarfile.SYMTYPE, keys)
        ),
        "auto-conf-link": adding(
            special("postgresql.auto.conf", tarfile.SYMTYPE, keys), dropping="postgresql.auto"
        ),
        "signal-link": adding(special("recovery.signal", tarfile.SYMTYPE, keys)),
        "pg-wal-directory-link": adding(
            special("pg_wal", tarfile.SYMTYPE, outside_dir), dropping="pg_wal"
        ),
        "hard-link": adding(special("global/keys", tarfile.LNKTYPE, keys.lstrip("/"))),
        "device-node": adding(special("dev_mem", tarfile.CHRTYPE, mode=0o666)),
        "fifo": adding(special("pipe", tarfile.FIFOTYPE)),
        "absolute-name": adding(regular(f"{outside_dir}/planted", b"x")),
        "climbing-name": adding(regular("../../../../../../tmp/mf-climbed", b"x")),
    }


CASES = list(crafted_cases("/o"))


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_base_backup_writes_nothing_outside_and_is_refused(
    s3: S3Server,
    taken: StoredBase,
    tmp_path: Path,
    outside: Path,
    restore_dir: Path,
    case: str,
) -> None:
    bucket = s3.new_bucket()
    change = crafted_cases(str(outside))[case]
    plant(s3, bucket, taken, change, server_major=NOT_INSTALLED_MAJOR)  # type: ignore[arg-type]
    env = base_env(s3, bucket, tmp_path)

    restore = run_moonflower("restore-cluster", "--to", str(restore_dir), "--latest", env=env)
    assert restore.returncode == 1, restore.stderr
    assert "refused" in restore.stderr
    assert "Traceback" not in restore.stderr
    assert not any(restore_dir.iterdir()), "a failed restore left files behind"
    assert untouched(outside)
    assert not Path("/tmp/mf-climbed").exists()

    verify = run_moonflower("verify", "--physical", env=env)
    assert verify.returncode == 1, verify.stderr
    assert "refused" in verify.stderr
    assert untouched(outside)


def test_setuid_and_setgid_bits_never_come_from_a_backup(
    s3: S3Server, taken: StoredBase, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    directory = tarfile.TarInfo("global/shared")
    directory.type, directory.mode = tarfile.DIRTYPE, 0o2777
    extra: list[Member] = [regular("global/tool", b"#!/bin/sh\n", 0o4777), (directory, None)]
    plant(s3, bucket, taken, adding(*extra), server_major=NOT_INSTALLED_MAJOR)
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", env=base_env(s3, bucket, tmp_path)
    )
    assert restore.returncode == 0, restore.stderr
    tool = (restore_dir / "global" / "tool").stat().st_mode
    shared = (restore_dir / "global" / "shared").stat().st_mode
    assert not tool & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH | stat.S_IXOTH)
    assert not shared & (stat.S_ISGID | stat.S_ISUID | stat.S_IWOTH)


def commands_in(outside: Path) -> bytes:
    marker = outside / "ran"
    return (
        f"recovery_end_command = 'touch {marker}-recovery-end'\n"
        "archive_mode = on\n"
        f"archive_command = 'touch {marker}-archive'\n"
        f"archive_cleanup_command = 'touch {marker}-cleanup'\n"
        "shared_preload_libraries = 'no_such_library'\n"
        f"include_if_exists = '{outside}/keys'\n"
        f"ARCHIVE_Command='touch {marker}-upper'\n"
    ).encode()


def test_commands_in_the_backups_settings_never_run(
    s3: S3Server, taken: StoredBase, tmp_path: Path, outside: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    plant(s3, bucket, taken, replacing("postgresql.auto.conf", commands_in(outside)))
    env = base_env(s3, bucket, tmp_path)

    verify = run_moonflower("verify", "--physical", "--restore", env=env)
    assert verify.returncode == 0, verify.stderr
    assert "left out" in verify.stderr
    if os.geteuid() == 0:
        assert "the trial recovery runs as uid " in verify.stderr
        assert "nobody" not in verify.stderr
    assert untouched(outside), sorted(p.name for p in outside.iterdir())

    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert untouched(outside), sorted(p.name for p in outside.iterdir())
    settings = (restore_dir / "postgresql.auto.conf").read_text()
    assert "touch" not in settings
    assert "no_such_library" not in settings
    assert "left out archive_mode" in settings


def test_a_description_dated_in_the_future_is_ignored(
    s3: S3Server, taken: StoredBase, tmp_path: Path, restore_dir: Path
) -> None:
    """Planted as the "newest" base backup, it would be restored by --latest and make
    prune remove the real ones."""
    bucket = s3.new_bucket()
    plant(s3, bucket, taken, lambda members: members)
    future = "2027-06-01T00:00:00.000Z"
    plant(
        s3,
        bucket,
        taken,
        adding(special("pg_wal", tarfile.SYMTYPE, "/etc"), dropping="pg_wal"),
        label=future,
        stop_time="2027-06-01T00:00:05+00:00",
        start_time="2027-06-01T00:00:00+00:00",
    )
    env = base_env(s3, bucket, tmp_path)
    listing = run_moonflower("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    labels = [e["key"] for e in json.loads(listing.stdout) if e.get("kind") == "base"]
    assert labels == [taken.record["key"]]
    assert f"ignoring the base backup {future}" in listing.stderr

    restore = run_moonflower("restore-cluster", "--to", str(restore_dir), "--latest", env=env)
    assert restore.returncode == 0, restore.stderr
    assert taken.record["label"] in restore.stderr

    pruned = run_moonflower("prune", env={**env, "S3_EXPIRES_IN": "1 second"})
    assert pruned.returncode == 0, pruned.stderr
    assert any(key == taken.record["key"] for key in s3.keys(bucket))


def test_wal_of_another_cluster_is_not_archived_beside_its_base_backups(
    s3: S3Server, taken: StoredBase, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    plant(s3, bucket, taken, lambda members: members)
    assert taken.record["system_identifier"]
    foreign = tmp_path / "incoming" / "000000010000000000000042"
    foreign.parent.mkdir()
    foreign.write_bytes(
        segment_header(int(taken.record["system_identifier"]) ^ 0x5A5A) + os.urandom(4096)
    )
    pushed = run_moonflower("wal-push", str(foreign), env=base_env(s3, bucket, tmp_path))
    assert pushed.returncode == 1, pushed.stderr
    assert "system identifier" in pushed.stderr
    assert not [key for key in s3.keys(bucket) if "/wal/" in key]

    own = foreign.with_name("000000010000000000000043")
    own.write_bytes(segment_header(int(taken.record["system_identifier"])) + os.urandom(4096))
    pushed = run_moonflower("wal-push", str(own), env=base_env(s3, bucket, tmp_path))
    assert pushed.returncode == 0, pushed.stderr
    (key,) = [key for key in s3.keys(bucket) if "/wal/" in key]
    metadata = s3.client().head_object(Bucket=bucket, Key=key)["Metadata"]
    assert metadata["system-identifier"] == taken.record["system_identifier"]


def test_a_planted_description_cannot_make_prune_delete_the_wal(
    s3: S3Server, taken: StoredBase, tmp_path: Path
) -> None:
    """Dated correctly but claiming a start far past the archive, a planted base backup is
    the newest one kept; the WAL the real one needs stays (BACKUP_PRUNE_MAX_DELETE)."""
    import pendulum

    bucket = s3.new_bucket()
    plant(s3, bucket, taken, lambda members: members)
    moment = pendulum.now("UTC")
    label = moment.format("YYYY-MM-DDTHH:mm:ss.SSS") + "Z"
    plant(
        s3,
        bucket,
        taken,
        lambda members: members[:1],
        label=label,
        start_lsn="FF/0",
        stop_lsn="FF/100",
        start_time=moment.isoformat(),
        stop_time=moment.isoformat(),
    )
    client = s3.client()
    wal = [f"pitr/wal/0000000100000000000000{n:02X}.zst" for n in range(2, 6)]
    for key in wal:
        client.put_object(Bucket=bucket, Key=key, Body=b"segment")
    pruned = run_moonflower("prune", "--keep-last", "1", env=base_env(s3, bucket, tmp_path))
    assert pruned.returncode == 1, pruned.stderr
    assert "BACKUP_PRUNE_MAX_DELETE" in pruned.stderr
    assert all(key in s3.keys(bucket) for key in wal)


def test_the_printed_start_command_cannot_collide_and_works(
    s3: S3Server, taken: StoredBase, tmp_path: Path, restore_dir: Path
) -> None:
    """Issue 28, item 10: the next step printed after restore-cluster takes no TCP port."""
    import shlex
    import subprocess

    bucket = s3.new_bucket()
    plant(s3, bucket, taken, lambda members: members)
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", env=base_env(s3, bucket, tmp_path)
    )
    assert restore.returncode == 0, restore.stderr
    assert "restore-cluster took" in restore.stderr  # the step timings, without --start too
    assert "download and extract" in restore.stderr
    command = shlex.split(restore.stdout.strip().splitlines()[-1])
    assert command[-1] == "start"
    assert "listen_addresses=" in command[command.index("-o") + 1]
    as_owner = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    wrapper = as_owner if os.geteuid() == 0 else []
    pg_ctl = command[0]
    log = restore_dir.parent / "server.log"
    if os.geteuid() == 0:
        shutil.chown(restore_dir.parent, UNPRIVILEGED, "nogroup")
    started = subprocess.run(
        [*wrapper, *command[:-1], "-w", "-l", str(log), "start"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        assert started.returncode == 0, started.stderr + (log.read_text() if log.exists() else "")
        psql = str(Path(pg_ctl).with_name("psql"))
        rows = subprocess.run(
            [
                *wrapper,
                "env",
                f"PGPASSWORD={DEFAULT_PASSWORD}",
                psql,
                "-h",
                str(restore_dir),
                "-U",
                "postgres",
                "-d",
                "app",
                "-Atc",
                "SELECT count(*) FROM ledger",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rows.stdout.strip() == "30", rows.stderr
    finally:
        subprocess.run(
            [*wrapper, pg_ctl, "-D", str(restore_dir), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_without_base_backups_the_archived_wal_decides_the_cluster(
    s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = base_env(s3, bucket, tmp_path)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for name, identifier, expected in (
        ("000000010000000000000010", 7001, 0),
        ("000000010000000000000011", 7002, 1),
        ("000000010000000000000012", 7001, 0),
    ):
        (incoming / name).write_bytes(segment_header(identifier) + os.urandom(1024))
        pushed = run_moonflower("wal-push", str(incoming / name), env=env)
        assert pushed.returncode == expected, pushed.stderr
    names = sorted(key.rsplit("/", 1)[1][:24] for key in s3.keys(bucket))
    assert names == ["000000010000000000000010", "000000010000000000000012"]


def test_a_restored_copy_does_not_archive_unless_asked(
    s3: S3Server, taken: StoredBase, tmp_path: Path, restore_dir: Path
) -> None:
    """Issue 29, item 1: the source's archiving would push the copy's new timeline into the
    archive it came from."""
    bucket = s3.new_bucket()
    archiving = b"archive_mode = on\narchive_command = 'true'\n"
    plant(s3, bucket, taken, replacing("postgresql.auto.conf", archiving))
    env = base_env(s3, bucket, tmp_path)
    kept = restore_dir.parent / "kept"
    kept.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(kept, UNPRIVILEGED, "nogroup")
    for directory, flags, expected in (
        (restore_dir, [], "off"),
        (kept, ["--keep-archiving"], "on"),
    ):
        restored = run_moonflower(
            "restore-cluster", "--to", str(directory), "--latest", "--start", *flags, env=env
        )
        assert restored.returncode == 0, restored.stderr
        with PgServer(password=DEFAULT_PASSWORD, data_dir=directory) as copy:
            assert copy.psql("SHOW archive_mode") == expected
