"""GnuPG: a private temporary home per run, key import and inspection, the gpg pipeline stage.

python-gnupg is used for keys only; the data itself goes through gpg as a pipeline stage.
The user's own keyring is never read or written.
"""

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum

from moonflower.config.model import EncryptionConfig
from moonflower.config.values import KeyBlock
from moonflower.core.errors import ConfigError, RestoreError, StageFailed
from moonflower.core.logs import log
from moonflower.proc.runner import Stage, capture, child_environment
from moonflower.proc.spool import owned_prefix, remove_stale_files

GPG_PROGRAM = "gpg"
EXPIRY_WARNING_DAYS = 30
GPGCONF_PROGRAM = "gpgconf"
AGENT_STOP_SECONDS = 10
HOME_KIND = "gnupg-"
# --openpgp first: it resets earlier algorithm options and keeps gpg 2.3+ from choosing
# AEAD (OCB) packets, which gpg 2.2 and many other OpenPGP tools cannot read.
COMMON_ARGUMENTS = (
    "--openpgp",
    "--batch",
    "--no-tty",
    "--quiet",
    "--yes",
    "--no-greeting",
    "--cipher-algo",
    "AES256",
    "--compress-algo",
    "none",
    "--output",
    "-",
)
SYMMETRIC_ARGUMENTS = (
    "--s2k-mode",
    "3",
    "--s2k-digest-algo",
    "SHA512",
    "--s2k-count",
    "65011712",
    "--pinentry-mode",
    "loopback",
)

logging.getLogger("gnupg").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Recipient:
    fingerprint: str
    user_ids: tuple[str, ...]
    expires: pendulum.DateTime | None


def home_parent(spool_dir: Path) -> Path:
    """Where GnuPG homes go: the system temp directory, whose short path keeps gpg-agent's
    socket names within their length limit; the spool directory when there is no usable
    temp directory (a read-only /tmp)."""
    try:
        return Path(tempfile.gettempdir())
    except OSError:
        return spool_dir


@contextlib.contextmanager
def temporary_home(spool_dir: Path) -> Iterator[Path]:
    """A fresh 0700 GnuPG home; its agent is stopped and the directory removed on exit."""
    try:
        parent = home_parent(spool_dir)
        home = Path(tempfile.mkdtemp(prefix=owned_prefix(parent, HOME_KIND), dir=parent))
    except OSError:  # the temp directory went read-only since it was chosen
        home = Path(tempfile.mkdtemp(prefix=owned_prefix(spool_dir, HOME_KIND), dir=spool_dir))
    home.chmod(0o700)
    try:
        yield home
    finally:
        if any(home.iterdir()):  # still empty: no gpg ran here, so no agent to stop
            stop_gpg_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def stop_gpg_agent(home: Path) -> None:
    """Stop any gpg-agent (and other daemons) started for this GnuPG home."""
    if shutil.which(GPGCONF_PROGRAM) is None:
        return
    argv = [GPGCONF_PROGRAM, "--homedir", str(home), "--kill", "all"]
    with contextlib.suppress(StageFailed):
        capture(Stage("gpgconf", argv), timeout=AGENT_STOP_SECONDS)


def remove_stale_homes(directory: Path) -> None:
    """GnuPG homes (and their agents) left in `directory` by Moonflower processes now gone."""
    remove_stale_files(directory, HOME_KIND, before_removing=stop_gpg_agent)


def _when(epoch: str) -> pendulum.DateTime | None:
    return pendulum.from_timestamp(int(epoch), tz="UTC") if epoch else None


def _encryption_expiry(key: dict[str, Any]) -> pendulum.DateTime | None:
    """The earliest of the primary key's expiry and its usable encryption subkeys' expiry."""
    dates = [_when(key.get("expires", ""))]
    for subkey in key.get("subkey_info", {}).values():
        if "e" in subkey.get("cap", "") and subkey.get("trust") not in ("e", "r"):
            dates.append(_when(subkey.get("expires", "")))
    known = [date for date in dates if date is not None]
    return min(known) if known else None


def _reject(block: KeyBlock, reason: str) -> ConfigError:
    return ConfigError([f"{block.origin}: {reason}"])


def import_public_key(home: Path, block: KeyBlock) -> Recipient:
    """Import the key into `home` and check it yields exactly one usable encryption key."""
    if shutil.which(GPG_PROGRAM) is None:
        raise _reject(block, "gpg is not installed (install GnuPG to encrypt backups)")
    import gnupg  # only runs with encryption pay for it

    keyring = gnupg.GPG(gnupghome=str(home), gpgbinary=GPG_PROGRAM, env=child_environment())
    result = keyring.import_keys(block.data)
    if getattr(result, "sec_imported", 0):
        raise _reject(block, "this is a private key; give the public key (gpg --export --armor)")
    keys = keyring.list_keys()
    if not keys:
        raise _reject(block, "does not contain an OpenPGP public key")
    if len(keys) > 1:
        fingerprints = ", ".join(key["fingerprint"] for key in keys)
        raise _reject(
            block,
            f"contains {len(keys)} keys ({fingerprints}); give exactly one, so that it is clear "
            "who can decrypt the backups",
        )
    key = keys[0]
    fingerprint = key["fingerprint"]
    expires = _encryption_expiry(key)
    if key.get("trust") == "r":
        raise _reject(block, f"key {fingerprint} is revoked")
    if key.get("trust") == "e" or (expires is not None and expires <= pendulum.now("UTC")):
        when = f" on {expires.to_date_string()}" if expires else ""
        raise _reject(block, f"key {fingerprint} expired{when}")
    if "E" not in key.get("cap", ""):
        raise _reject(
            block,
            f"key {fingerprint} has no usable encryption subkey (revoked, expired or sign-only)",
        )
    return Recipient(fingerprint, tuple(key.get("uids", ())), expires)


def log_recipient(recipient: Recipient) -> None:
    names = ", ".join(recipient.user_ids) or "no user id"
    expiry = recipient.expires.to_date_string() if recipient.expires else "never"
    log.info("encrypting to key %s (%s), expires %s", recipient.fingerprint, names, expiry)
    if recipient.expires is not None:
        days_left = (recipient.expires - pendulum.now("UTC")).in_days()
        if days_left < EXPIRY_WARNING_DAYS:
            log.warning(
                "the encryption key %s expires in %d day(s), on %s: renew it or set a new "
                "ENCRYPTION_PUBLIC_KEY, or backups will stop",
                recipient.fingerprint,
                days_left,
                recipient.expires.to_date_string(),
            )


class Encryption:
    """Encryption for one run: holds the temporary GnuPG home and builds gpg stages."""

    def __init__(self, config: EncryptionConfig, home: Path) -> None:
        self.config = config
        self.home = home
        self.recipient: Recipient | None = None

    @classmethod
    @contextlib.contextmanager
    def open(cls, config: EncryptionConfig, spool_dir: Path) -> Iterator["Encryption | None"]:
        """Check the key before any backup; ConfigError if it is unusable."""
        if not config.enabled:
            yield None
            return
        with temporary_home(spool_dir) as home:
            encryption = cls(config, home)
            if config.public_key is not None:
                encryption.recipient = import_public_key(home, config.public_key)
                log_recipient(encryption.recipient)
            elif shutil.which(GPG_PROGRAM) is None:
                raise ConfigError(["ENCRYPTION_PASSPHRASE: gpg is not installed"])
            else:
                log.info("encrypting with a passphrase (symmetric AES256)")
            yield encryption

    @contextlib.contextmanager
    def stage(self) -> Iterator[Stage]:
        """The gpg stage; with a passphrase, it reads it from an inherited pipe, not argv."""
        arguments = [GPG_PROGRAM, "--homedir", str(self.home), *COMMON_ARGUMENTS]
        if self.recipient is not None:
            arguments += ["--trust-model", "always", "--recipient", self.recipient.fingerprint]
            arguments += ["--encrypt"]
            yield Stage("gpg", arguments)
            return
        assert self.config.passphrase is not None
        with passphrase_pipe(self.config.passphrase) as descriptor:
            arguments += [*SYMMETRIC_ARGUMENTS, "--passphrase-fd", str(descriptor), "--symmetric"]
            yield Stage("gpg", arguments, pass_fds=frozenset({descriptor}))


@contextlib.contextmanager
def passphrase_pipe(passphrase: str) -> Iterator[int]:
    """A pipe holding the passphrase and a newline; its read end is inherited by gpg."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, passphrase.encode("utf-8") + b"\n")
        os.close(write_end)
        write_end = -1
        os.set_inheritable(read_end, True)
        yield read_end
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)


class Decryption:
    """Decryption for restore and verify: passphrase, or the private key in a temporary home."""

    def __init__(self, config: EncryptionConfig, home: Path) -> None:
        self.config = config
        self.home = home
        self.has_private_key = False

    @classmethod
    @contextlib.contextmanager
    def open(cls, config: EncryptionConfig, spool_dir: Path) -> Iterator["Decryption"]:
        with temporary_home(spool_dir) as home:
            decryption = cls(config, home)
            if config.private_key is not None:
                decryption._import_private_key(config.private_key)
            yield decryption

    def _import_private_key(self, block: KeyBlock) -> None:
        if shutil.which(GPG_PROGRAM) is None:
            raise _reject(block, "gpg is not installed (install GnuPG to decrypt backups)")
        import gnupg

        keyring = gnupg.GPG(
            gnupghome=str(self.home), gpgbinary=GPG_PROGRAM, env=child_environment()
        )
        result = keyring.import_keys(block.data)
        if not getattr(result, "sec_imported", 0) and not keyring.list_keys(secret=True):
            raise _reject(block, "does not contain a usable OpenPGP private key")
        self.has_private_key = True

    @contextlib.contextmanager
    def stage(self, symmetric: bool, what: str) -> Iterator[Stage]:
        """`gpg --decrypt` reading stdin; needs the passphrase or the private key for `what`."""
        arguments = [
            GPG_PROGRAM,
            "--homedir",
            str(self.home),
            "--batch",
            "--no-tty",
            "--quiet",
            "--yes",
            "--pinentry-mode",
            "loopback",
        ]
        if symmetric:
            secret = self.config.passphrase
            if secret is None:
                raise RestoreError("decrypt", f"ENCRYPTION_PASSPHRASE: required to decrypt {what}")
        else:
            if not self.has_private_key:
                raise RestoreError(
                    "decrypt",
                    f"ENCRYPTION_PRIVATE_KEY: required to decrypt {what} (public-key encrypted)",
                )
            secret = self.config.private_key_passphrase
        explain = functools.partial(decryption_failure, symmetric, what)
        if secret is None:
            yield Stage("gpg", [*arguments, "--decrypt"], explain=explain)
            return
        with passphrase_pipe(secret) as descriptor:
            arguments += ["--passphrase-fd", str(descriptor), "--decrypt"]
            yield Stage("gpg", arguments, pass_fds=frozenset({descriptor}), explain=explain)


def decryption_failure(symmetric: bool, what: str, stderr_tail: str) -> RestoreError | None:
    """gpg's words for a secret that does not fit, as the setting to fix."""
    if symmetric and "Bad session key" in stderr_tail:
        return RestoreError(
            "decrypt", f"ENCRYPTION_PASSPHRASE does not decrypt {what} (a different passphrase?)"
        )
    if not symmetric and "No secret key" in stderr_tail:
        return RestoreError(
            "decrypt",
            f"ENCRYPTION_PRIVATE_KEY does not decrypt {what}: it was encrypted to another "
            "key (does ENCRYPTION_PRIVATE_KEY match the ENCRYPTION_PUBLIC_KEY it was made with?)",
        )
    if not symmetric and "Bad passphrase" in stderr_tail:
        return RestoreError(
            "decrypt",
            "ENCRYPTION_PRIVATE_KEY_PASSPHRASE does not unlock ENCRYPTION_PRIVATE_KEY",
        )
    return None
