"""Client-side encryption with the real gpg: round trips through stock tools, refusals up front."""

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from moonflower.config.loader import load_config
from moonflower.core.errors import ConfigError
from moonflower.proc.gpg import Encryption
from tests.conftest import NASTY_DATABASE
from tests.support import gpgkeys
from tests.support.gpgkeys import KeyPair
from tests.support.pgserver import PgServer
from tests.support.procs import processes_with
from tests.support.procscan import watch_moonflower
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.stock import load_gzip_dump

PASSPHRASE = "correct horse 'battery' \"staple\" $HOME"
ENCRYPTED_KEY = r"nightly/{db}_\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\.sql\.gz\.gpg"


@pytest.fixture(scope="module")
def key_home() -> Iterator[Path]:
    with gpgkeys.gnupg_home() as home:
        yield home


@pytest.fixture(scope="module")
def key_pair(key_home: Path) -> KeyPair:
    return gpgkeys.generate(key_home)


def download_only_object(s3: S3Server, bucket: str, target: Path) -> str:
    [key] = s3.keys(bucket)
    s3.client().download_file(bucket, key, str(target))
    return key


def assert_no_aead_packets(packets: str) -> None:
    """Readable by gpg 2.2 and other OpenPGP tools: an MDC-protected packet, no AEAD/OCB one."""
    assert ":encrypted data packet:" in packets
    assert "mdc_method: 2" in packets
    assert ":aead encrypted packet:" not in packets


def assert_restores_identically(pg: PgServer, gzip_dump: Path, name: str) -> None:
    load_gzip_dump(pg, gzip_dump, name)
    assert pg.dump_text(name) == pg.dump_text(NASTY_DATABASE)


def test_passphrase_round_trip_with_stock_gpg(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    tmp_path: Path,
    spool_dir: Path,
) -> None:
    backup_env["ENCRYPTION_PASSPHRASE"] = PASSPHRASE

    watch = watch_moonflower(backup_env, [PASSPHRASE])

    assert watch.returncode == 0, watch.stderr.decode()
    assert "gpg" in watch.programs_seen, "the scan never saw gpg, so it proved nothing"
    assert watch.leaks == []
    assert PASSPHRASE.encode() not in watch.stdout + watch.stderr
    assert list(spool_dir.iterdir()) == []
    encrypted = tmp_path / "backup.sql.gz.gpg"
    key = download_only_object(s3, bucket, encrypted)
    assert re.fullmatch(ENCRYPTED_KEY.format(db=re.escape(NASTY_DATABASE)), key)
    assert b"CREATE TABLE" not in encrypted.read_bytes()
    packets = gpgkeys.list_packets(encrypted)
    assert "symkey enc packet" in packets
    assert "cipher 9, aead 0,s2k 3, hash 10" in packets  # AES256, no AEAD, iterated SHA512
    assert_no_aead_packets(packets)

    decrypted = tmp_path / "backup.sql.gz"
    gpgkeys.decrypt_with_passphrase(encrypted, decrypted, PASSPHRASE)
    assert_restores_identically(pg, decrypted, "restored_symmetric")


def test_public_key_from_the_old_readme_round_trip(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    tmp_path: Path,
    key_pair: KeyPair,
) -> None:
    backup_env["ENCRYPTION_PUBLIC_KEY"] = key_pair.public_base64

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert key_pair.fingerprint in result.stderr
    encrypted = tmp_path / "backup.sql.gz.gpg"
    download_only_object(s3, bucket, encrypted)
    packets = gpgkeys.list_packets(encrypted)
    assert "pubkey enc packet" in packets
    assert_no_aead_packets(packets)

    decrypted = tmp_path / "backup.sql.gz"
    gpgkeys.decrypt_with_key(encrypted, decrypted, key_pair)
    assert_restores_identically(pg, decrypted, "restored_public_key")


def test_public_key_file_holds_the_armored_key(
    s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path, key_pair: KeyPair
) -> None:
    key_file = tmp_path / "public.asc"
    key_file.write_bytes(key_pair.public_armored)
    backup_env["ENCRYPTION_PUBLIC_KEY_FILE"] = str(key_file)
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    [key] = s3.keys(bucket)
    assert key.endswith(".sql.gz.gpg")


def test_no_gnupg_home_or_agent_is_left_behind(
    backup_env: dict[str, str], tmp_path: Path, key_pair: KeyPair
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    backup_env["TMPDIR"] = str(private_tmp)
    backup_env["ENCRYPTION_PASSPHRASE"] = PASSPHRASE
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert [p for p in private_tmp.iterdir() if p.name.startswith("moonflower-gnupg-")] == []
    agents = processes_with(str(private_tmp))
    assert agents == []


@pytest.fixture(scope="module")
def bad_keys(key_home: Path, key_pair: KeyPair) -> dict[str, str]:
    expired = gpgkeys.generate(
        key_home, "Expired Key", "", "--faked-system-time", "20200101T000000", expire="1d"
    )
    revoked_pair = gpgkeys.generate(key_home, "Revoked Key")
    revoked = gpgkeys.revoke(key_home, revoked_pair)
    other = gpgkeys.generate(key_home, "Second Key")
    two_keys = gpgkeys.gpg(key_home, "--armor", "--export", key_pair.fingerprint, other.fingerprint)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "not base64": "this is not base64!",
        "base64 of garbage": b64(b"definitely not an OpenPGP key" * 10),
        "a private key": b64(key_pair.secret_armored),
        "an expired key": b64(expired.public_armored),
        "a revoked key": b64(revoked),
        "two keys": b64(two_keys),
    }


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not base64", "not valid base64"),
        ("base64 of garbage", "does not contain an OpenPGP public key"),
        ("a private key", "this is a private key"),
        ("an expired key", "expired on 2020-01-02"),
        ("a revoked key", "is revoked"),
        ("two keys", "contains 2 keys"),
    ],
)
def test_unusable_public_keys_are_refused_before_anything_runs(
    backup_env: dict[str, str], bad_keys: dict[str, str], case: str, message: str
) -> None:
    """In-process, with the real gpg: the key is checked when the configuration is loaded
    and encryption is opened, before any dump (exit 2 end to end: the test below)."""
    backup_env["ENCRYPTION_PUBLIC_KEY"] = bad_keys[case]

    def load_and_open_encryption() -> None:
        config = load_config(backup_env)
        with Encryption.open(config.encryption, config.backup.spool_dir):
            pass

    with pytest.raises(ConfigError) as caught:
        load_and_open_encryption()

    [problem] = caught.value.problems
    assert problem.startswith("ENCRYPTION_PUBLIC_KEY: ")
    assert message in problem


def test_an_unusable_public_key_exits_2_and_writes_nothing(
    s3: S3Server, bucket: str, backup_env: dict[str, str], bad_keys: dict[str, str]
) -> None:
    backup_env["ENCRYPTION_PUBLIC_KEY"] = bad_keys["an expired key"]

    result = run_moonflower(env=backup_env)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("moonflower: ENCRYPTION_PUBLIC_KEY: ")
    assert "expired on 2020-01-02" in line
    assert "Traceback" not in result.stderr
    assert s3.keys(bucket) == []


def test_a_key_expiring_soon_is_used_with_a_warning(
    s3: S3Server, bucket: str, backup_env: dict[str, str], key_home: Path
) -> None:
    soon = gpgkeys.generate(key_home, "Expiring Soon", expire="10d")
    backup_env["ENCRYPTION_PUBLIC_KEY"] = soon.public_base64
    backup_env["PG_DATABASES"] = "second"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert f"the encryption key {soon.fingerprint} expires in" in result.stderr
    assert len(s3.keys(bucket)) == 1
