"""The WAL archive in S3: push a completed segment or history file, push the segment being
written (`.partial`) while it grows, and fetch any of them back.

A name is written once: pushing the same file again is a no-op (archive_command retries,
a restarted stream), pushing different content under a name already archived is refused.
Each object records the SHA-256 of its raw content, so the comparison does not depend on
the encryption, which never produces the same bytes twice.
"""

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import pendulum

from moonflower.catalog.physical_keys import (
    parse_wal_key,
    partial_key,
    wal_key,
    wal_prefix,
)
from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, KeyTaken, MoonflowerError, WalError
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.postgres.wal_names import PARTIAL_SUFFIX, is_wal_file, segment_of
from moonflower.proc import runner
from moonflower.proc.codec import COPY, decoding_stages, encode_file, encoding_suffix
from moonflower.proc.gpg import Decryption, Encryption
from moonflower.proc.runner import Stage
from moonflower.proc.spool import spool_file
from moonflower.storage.destination import Destination
from moonflower.storage.fetch import Expected, fetch_checked
from moonflower.storage.gateway import Storage
from moonflower.storage.objects import SHA256_METADATA_KEY
from moonflower.storage.replication import store_on_replicas

CONTENT_SHA256 = "content-sha256"
"""Object metadata: the SHA-256 of the raw WAL file, before compression and encryption."""
SYSTEM_IDENTIFIER = "system-identifier"
"""Object metadata: the system identifier of the cluster that wrote the segment."""
CONTENT_TYPE = "application/octet-stream"
SHA256_HEX_LENGTH = 64


def open_new(path: Path) -> BinaryIO:
    """A file that did not exist, never reached through a symbolic link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), "wb")


SYSTEM_IDENTIFIER_AT = 24
"""Where a segment's first page header holds the system identifier (XLogLongPageHeaderData:
the 20-byte short header, aligned to 24, then xlp_sysid, a uint64 in the host's order, then
xlp_seg_size and xlp_xlog_blcksz; xlp_info, at byte 2, flags the long header)."""


XLP_LONG_HEADER = 0x0002
LONG_HEADER_BYTES = 40


def system_identifier(path: Path) -> str | None:
    """The system identifier in a segment's first page header; None when the file does not
    start with a long page header (nothing written yet, or not a WAL segment)."""
    with path.open("rb") as handle:
        header = handle.read(LONG_HEADER_BYTES)
    if len(header) < LONG_HEADER_BYTES:
        return None

    def number(at: int, size: int) -> int:
        return int.from_bytes(header[at : at + size], sys.byteorder)

    segment_size, block_size = number(32, 4), number(36, 4)
    if not (
        number(2, 2) & XLP_LONG_HEADER
        and is_power_of_two(segment_size, 1 << 20, 1 << 30)
        and is_power_of_two(block_size, 1 << 10, 1 << 15)
    ):
        return None
    found = number(SYSTEM_IDENTIFIER_AT, 8)
    return str(found) if found else None


def is_power_of_two(value: int, low: int, high: int) -> bool:
    return low <= value <= high and value & (value - 1) == 0


def content_digest(path: Path) -> str:
    """SHA-256 of a WAL file, computed by `sha256sum`: the WAL's bytes stay out of Python."""
    output = runner.capture(Stage("sha256sum", ["sha256sum", "--zero", "--", str(path)]))
    digest = output.split(maxsplit=1)[0] if output else ""
    if len(digest) != SHA256_HEX_LENGTH:
        raise WalError(f"sha256sum gave no digest for {path.name}")
    return digest


class WalArchive:
    """The archive on `destination`. Pushes go to the `replicas` too (the same encoded file);
    a fetch the destination cannot answer (unreachable, missing, damaged) tries the
    `fallbacks` in order."""

    def __init__(
        self,
        config: Config,
        destination: Destination,
        encryption: Encryption | None,
        replicas: Sequence[Destination] = (),
        fallbacks: Sequence[Destination] = (),
    ) -> None:
        self.config = config
        self.destination = destination
        self.prefix = destination.prefix
        self.storage = destination.storage
        self.encryption = encryption
        self.replicas = replicas
        self.fallbacks = fallbacks
        self.suffix = encoding_suffix(config.backup.compression.algorithm, encryption is not None)
        self._identity: str | None = None
        self._last_partial: dict[tuple[str, str], tuple[pendulum.DateTime, str]] = {}
        """Per destination and segment: when this process last pushed it partially there,
        and its content digest."""

    # --- pushing ---------------------------------------------------------------------------
    def push(self, source: Path) -> bool:
        """Archive a completed segment or history file; False when it already was."""
        name = source.name
        if not is_wal_file(name) or name.endswith(PARTIAL_SUFFIX):
            raise WalError(f"{name} is not a WAL segment or history file")
        key = wal_key(self.prefix, name, self.suffix)
        metadata = self._metadata(source, name)
        digest = metadata[CONTENT_SHA256]
        stored = False
        with spool_file(self.config.backup.spool_dir, self.suffix or ".wal") as encoded:
            if not self._already_archived(key, name, digest):
                encode_file(source, encoded, self.config.backup.compression, self.encryption)
                stored = self._store(self.storage(), encoded, key, name, metadata)
            if self.replicas:
                if not stored:  # a retry: the primary had it, a replica may not
                    encode_file(source, encoded, self.config.backup.compression, self.encryption)
                self._replicate(
                    f"WAL {name}",
                    lambda replica: self._store(
                        replica.storage(),
                        encoded,
                        wal_key(replica.prefix, name, self.suffix),
                        name,
                        metadata,
                    ),
                )
        if stored:
            log.info("archived %s", name)
        if segment_of(name) is not None:
            self._forget_partials(name)
        return stored

    def _store(
        self, storage: Storage, encoded: Path, key: str, name: str, metadata: dict[str, str]
    ) -> bool:
        """Create-only; False when the same content was already there."""
        try:
            storage.upload(encoded, key, CONTENT_TYPE, metadata)
        except KeyTaken:  # a concurrent push of the same name landed first
            if not self._already_archived(key, name, metadata[CONTENT_SHA256], storage):
                raise
            return False
        return True

    def _replicate(self, what: str, store: Callable[[Destination], object]) -> None:
        """A required replica's failure raises (the push is retried, the primary's copy
        already stored); an optional one's is logged and recorded."""
        state_dir = state_directory(self.config.backup)
        store_on_replicas(self.replicas, what, store, state_dir).check()

    def _metadata(self, source: Path, name: str) -> dict[str, str]:
        """What each WAL object records of its content; refuses a segment written by
        another cluster than the one this S3_PATH's base backups come from."""
        metadata = {CONTENT_SHA256: content_digest(source)}
        found = system_identifier(source) if segment_of(name) is not None else None
        if found is None:
            return metadata
        expected = self.archive_identity()
        if expected is not None and found != expected:
            raise WalError(
                f"{name} was written by the cluster with system identifier {found}, but the "
                f"base backups under this S3_PATH are of {expected}: it was not archived. "
                "One S3_PATH per cluster"
            )
        return {**metadata, SYSTEM_IDENTIFIER: found}

    def archive_identity(self) -> str | None:
        """The system identifier of the newest base backup that recorded one, else the one
        recorded by a segment already archived here (asked once per process)."""
        if self._identity is None:
            from moonflower.catalog.physical import base_backups

            known = [b.system_identifier for b in base_backups(self.storage(), self.prefix)]
            self._identity = next((found for found in reversed(known) if found), "")
            if not self._identity:
                self._identity = self._archived_identity() or ""
        return self._identity or None

    def _archived_identity(self) -> str | None:
        """From the first complete segment of the listing's first page."""
        for item in self.storage().list_objects(wal_prefix(self.prefix)):
            found = parse_wal_key(item.key, self.prefix)
            if found is None or found.partial or segment_of(found.name) is None:
                continue
            head = self.storage().head(item.key) or {}
            recorded = head.get("Metadata", {}).get(SYSTEM_IDENTIFIER)
            return recorded if isinstance(recorded, str) and recorded.isdigit() else None
        return None

    def _already_archived(
        self, key: str, name: str, digest: str, storage: Storage | None = None
    ) -> bool:
        head = (storage or self.storage()).head(key)
        if head is None:
            return False
        stored = head.get("Metadata", {}).get(CONTENT_SHA256)
        if stored != digest:
            raise WalError(
                f"the archive already holds a different {name} ({key}); it was left alone. "
                "Two servers archiving to the same S3_PATH, or a cluster restored without "
                "moving to a new timeline?"
            )
        log.info("%s was already archived with the same content", name)
        return True

    def push_partial(self, source: Path) -> bool:
        """Upload the segment being written to each destination whose copy of it changed
        since this process last pushed it; the previous partial upload is removed from a
        destination once the new one is stored there."""
        segment = source.name.removesuffix(PARTIAL_SUFFIX)
        spool = self.config.backup.spool_dir
        with spool_file(spool, ".partial") as snapshot:
            with source.open("rb") as reader, snapshot.open("wb") as writer:
                runner.run([COPY], output=writer, source=reader)
            metadata = self._metadata(snapshot, segment)
            digest = metadata[CONTENT_SHA256]
            behind = [
                destination
                for destination in (self.destination, *self.replicas)
                if self._last_partial.get((destination.name, segment), (None, ""))[1] != digest
            ]
            if not behind:
                return False
            moment = pendulum.now("UTC")
            with spool_file(spool, self.suffix or ".wal") as encoded:
                encode_file(snapshot, encoded, self.config.backup.compression, self.encryption)

                def store(destination: Destination) -> None:
                    self._store_partial(destination, encoded, segment, moment, metadata)

                if self.destination in behind:
                    store(self.destination)
                lagging = [replica for replica in self.replicas if replica in behind]
                if lagging:
                    state_dir = state_directory(self.config.backup)
                    store_on_replicas(lagging, f"partial WAL {segment}", store, state_dir).check()
        log.debug("pushed the partial segment %s", segment)
        return True

    def _store_partial(
        self,
        destination: Destination,
        encoded: Path,
        segment: str,
        moment: pendulum.DateTime,
        metadata: dict[str, str],
    ) -> None:
        storage = destination.storage()
        key = partial_key(destination.prefix, segment, moment, self.suffix)
        storage.upload(encoded, key, CONTENT_TYPE, metadata, lasting=False)
        previous = self._last_partial.get((destination.name, segment))
        self._last_partial[(destination.name, segment)] = (moment, metadata[CONTENT_SHA256])
        if previous is not None:
            superseded = partial_key(destination.prefix, segment, previous[0], self.suffix)
            self._delete_quietly(storage, superseded)

    def _forget_partials(self, segment: str) -> None:
        """The segment is complete: its partial uploads (this process's or an earlier
        one's) are superseded, on every destination."""
        for destination in (self.destination, *self.replicas):
            self._last_partial.pop((destination.name, segment), None)
            start = f"{wal_prefix(destination.prefix)}{segment}{PARTIAL_SUFFIX}."
            with contextlib.suppress(MoonflowerError):
                storage = destination.storage()
                for item in storage.list_objects(start):
                    self._delete_quietly(storage, item.key)

    @staticmethod
    def _delete_quietly(storage: Storage, key: str) -> None:
        try:
            storage.delete_latest(key)
        except MoonflowerError as error:
            log.debug("could not remove the superseded %s: %s", key, error)

    # --- fetching --------------------------------------------------------------------------
    def find(self, name: str, partial_since: pendulum.DateTime | None = None) -> str | None:
        """The key holding `name`: the complete file, else the newest partial of a segment
        (pushed after `partial_since`, when given: an older one may hold less than a copy
        the caller already has)."""
        key = wal_key(self.prefix, name, self.suffix)
        if self.storage().head(key) is not None:
            return key
        candidates = []
        for item in self.storage().list_objects(f"{wal_prefix(self.prefix)}{name}"):
            found = parse_wal_key(item.key, self.prefix)
            if found is not None and found.name == name:
                candidates.append(found)
        complete = [found for found in candidates if not found.partial]
        if complete:  # stored with another encoding (compression or encryption changed)
            return complete[0].key
        pushed = sorted(
            (found.partial_time, found.key) for found in candidates if found.partial_time
        )
        if not pushed or (partial_since is not None and pushed[-1][0] < partial_since):
            return None
        if self._followed_by_more(name):
            log.warning("%s is only partially archived, yet WAL after it is: a gap", name)
            return None
        return pushed[-1][1]

    def _followed_by_more(self, name: str) -> bool:
        """A partial upload is only ever the last segment of its timeline."""
        segment = segment_of(name)
        if segment is None:
            return False
        following = f"{wal_prefix(self.prefix)}{segment.next().name}"
        return any(True for _ in self.storage().list_objects(following))

    def fetch(
        self,
        name: str,
        target: Path,
        decryption: Decryption,
        partial_since: pendulum.DateTime | None = None,
        expected_system: str | None = None,
    ) -> bool:
        """Write the WAL file `name` to `target`, checked (with `expected_system`, also that
        a segment was written by that cluster), from the first destination that has it
        intact; False when none has it, the error when one could not be asked and no
        other had it (a missing file ends a recovery: it must be really missing)."""
        failures: list[MoonflowerError] = []
        readers = [self, *(WalArchive(self.config, other, None) for other in self.fallbacks)]
        for position, archive in enumerate(readers):
            where = archive.destination.name
            try:
                if archive.fetch_here(name, target, decryption, partial_since, expected_system):
                    if position:
                        log.warning("%s fetched from %s (fallback)", name, where)
                    return True
                reason: MoonflowerError = WalError(f"{where} does not hold {name}")
            except ConfigError:
                raise
            except MoonflowerError as error:
                failures.append(error)
                reason = error
            if position + 1 < len(readers):
                following = readers[position + 1].destination.name
                level = log.warning if failures and failures[-1] is reason else log.info
                level("%s not fetched from %s (%s): trying %s", name, where, reason, following)
        if failures:
            raise failures[0]
        return False

    def fetch_here(
        self,
        name: str,
        target: Path,
        decryption: Decryption,
        partial_since: pendulum.DateTime | None = None,
        expected_system: str | None = None,
    ) -> bool:
        """`fetch` from this archive's destination alone."""
        key = self.find(name, partial_since)
        if key is None:
            return False
        found = parse_wal_key(key, self.prefix)
        assert found is not None
        storage = self.storage()
        head = storage.head(key) or {}
        metadata = head.get("Metadata", {})
        spool = self.config.backup.spool_dir
        expected = Expected(
            sha256=metadata.get(SHA256_METADATA_KEY), encrypted=self.encryption_expected
        )
        with fetch_checked(storage, key, spool, found.suffix or ".wal", expected) as stored:
            staged = target.with_name(f".{target.name}.moonflower")
            staged.unlink(missing_ok=True)  # a killed fetch's (a link is removed, not followed)
            try:
                with (
                    decoding_stages(stored, found.suffix, decryption, key) as stages,
                    stored.open("rb") as reader,
                    open_new(staged) as writer,
                ):
                    runner.run(stages, output=writer, source=reader)
                if content_digest(staged) != metadata.get(CONTENT_SHA256):
                    raise WalError(f"{key} decodes to content other than what was archived")
                written_by = system_identifier(staged) if segment_of(name) else None
                if expected_system not in (None, written_by):
                    raise WalError(
                        f"{key} was written by the cluster with system identifier "
                        f"{written_by}, not by the base backup's ({expected_system})"
                    )
                os.replace(staged, target)
            finally:
                staged.unlink(missing_ok=True)
        log.info("fetched %s%s", name, " (partial)" if found.partial else "")
        return True

    @property
    def encryption_expected(self) -> bool:
        return self.config.encryption.enabled
