"""Real OpenPGP keys made with the stock gpg binary, and stock decryption, for tests."""

import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GPG_TIMEOUT_SECONDS = 120
OLD_README_USER_ID = "Backup Encryption Key"


@contextlib.contextmanager
def gnupg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="mf-test-gnupg-"))
    home.chmod(0o700)
    try:
        yield home
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            check=False,
            capture_output=True,
            timeout=GPG_TIMEOUT_SECONDS,
        )
        shutil.rmtree(home, ignore_errors=True)


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    completed = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args],
        input=stdin,
        capture_output=True,
        timeout=GPG_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"gpg {' '.join(args)} failed: {completed.stderr.decode()}")
    return completed.stdout


@dataclass(frozen=True)
class KeyPair:
    fingerprint: str
    public_armored: bytes
    secret_armored: bytes
    passphrase: str

    @property
    def public_base64(self) -> str:
        """Exactly what the old README tells users to do: `base64 -w 0 public.asc`."""
        return base64.b64encode(self.public_armored).decode()


def generate(
    home: Path,
    user_id: str = OLD_README_USER_ID,
    passphrase: str = "",
    *extra: str,
    expire: str | None = None,
) -> KeyPair:
    """`gpg --batch --quick-gen-key 'Backup Encryption Key' default default`, made unattended."""
    expiry = [expire] if expire else []
    quick_gen = ["--quick-gen-key", user_id, "default", "default", *expiry]
    gpg(home, "--passphrase", passphrase, *extra, *quick_gen)
    listing = gpg(home, "--with-colons", "--list-keys", user_id).decode()
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    public = gpg(home, "--armor", "--export", fingerprint)
    secret = gpg(home, "--passphrase", passphrase, "--armor", "--export-secret-keys", fingerprint)
    return KeyPair(fingerprint, public, secret, passphrase)


def revoke(home: Path, key: KeyPair) -> bytes:
    """Import the revocation certificate gpg made at generation; return the revoked key."""
    certificate = (home / "openpgp-revocs.d" / f"{key.fingerprint}.rev").read_text()
    gpg(home, "--import", stdin=certificate.replace(":-----BEGIN", "-----BEGIN").encode())
    return gpg(home, "--armor", "--export", key.fingerprint)


def decrypt_with_passphrase(source: Path, target: Path, passphrase: str) -> None:
    """Stock `gpg -d`, the passphrase on a file descriptor."""
    read_end, write_end = os.pipe()
    os.write(write_end, passphrase.encode() + b"\n")
    os.close(write_end)
    try:
        with gnupg_home() as home:
            completed = subprocess.run(
                [
                    "gpg",
                    "--homedir",
                    str(home),
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase-fd",
                    str(read_end),
                    "--output",
                    str(target),
                    "-d",
                    str(source),
                ],
                pass_fds=(read_end,),
                capture_output=True,
                timeout=GPG_TIMEOUT_SECONDS,
                check=False,
            )
    finally:
        os.close(read_end)
    if completed.returncode != 0:
        raise RuntimeError(f"gpg -d failed: {completed.stderr.decode()}")


def decrypt_with_key(source: Path, target: Path, key: KeyPair) -> None:
    """Stock `gpg -d` with the private key imported into a separate temporary home."""
    with gnupg_home() as home:
        gpg(home, "--passphrase", key.passphrase, "--import", stdin=key.secret_armored)
        gpg(home, "--passphrase", key.passphrase, "--output", str(target), "-d", str(source))


def list_packets(source: Path) -> str:
    with gnupg_home() as home:
        completed = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--list-packets", str(source)],
            capture_output=True,
            timeout=GPG_TIMEOUT_SECONDS,
            check=False,
        )
    return completed.stdout.decode(errors="replace")
