"""Bringing a backup back: download, check, then decrypt | decompress | psql as one pipeline."""

import contextlib
import os
import re
import time
from pathlib import Path

from moonflower.catalog.keys import GLOBALS_SHOWN
from moonflower.catalog.logical import BackupInfo, Catalog
from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError, RestoreError
from moonflower.core.logs import log, step
from moonflower.core.sizes import human_size
from moonflower.logical.fetching import Reader, fetched_and_read
from moonflower.logical.plans import CUSTOM_EXTENSION
from moonflower.logical.readback import (
    PlainSql,
    Trust,
    decoding_stages,
    fetched,
    plain_dump_file,
    read_plain_to_the_end,
    restricted_psql,
    run_with_progress,
)
from moonflower.logical.restore_jobs import default_restore_jobs
from moonflower.logical.target_survey import TargetState, TargetSurvey
from moonflower.postgres.clients import ClientTool, newest_client
from moonflower.postgres.connection import MAINTENANCE_DATABASE, passfile
from moonflower.postgres.roles import RoleFilter
from moonflower.postgres.server import Server
from moonflower.proc import runner
from moonflower.proc.gpg import Decryption
from moonflower.proc.runner import Stage
from moonflower.proc.spool import spool_file
from moonflower.storage.gateway import Storage

PLAIN_SQL_STARTS = (b"--", b"SET ", b"\n", b"\\")
MISSING_ROLE = re.compile(r'role "([^"]+)" does not exist')


def conninfo_dbname(name: str) -> str:
    """A libpq connection string naming just the database, whatever characters it holds."""
    return "dbname='" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def owner_hint(message: str) -> str:
    match = MISSING_ROLE.search(message)
    if not match:
        return ""
    return (
        f" (create role {match.group(1)} first, or restore with --globals; custom-format "
        "backups can also be restored with --no-owner)"
    )


class Restorer:
    def __init__(
        self,
        config: Config,
        storage: Storage,
        allow_unverified: bool = False,
        overwrite_roles: bool = False,
        jobs: int | None = None,
    ) -> None:
        self.config = config
        self.jobs = jobs or default_restore_jobs()
        self.storage = storage
        self.catalog = Catalog(
            storage, storage.config
        )  # the destination read, not always the primary
        self.overwrite_roles = overwrite_roles
        encryption = config.encryption
        self.trust = Trust(
            expect_encrypted=encryption.enabled or encryption.private_key is not None,
            allow_unverified=allow_unverified,
        )

    def choose(self, database: str, key: str | None) -> BackupInfo:
        try:
            info = self.catalog.get(key) if key else self.catalog.newest_unflagged(database)
        except MoonflowerError as error:
            raise RestoreError("find", str(error)) from None
        if key and self.catalog.is_flagged(info.key):
            log.warning(
                "%s was flagged by its run (%s); restoring it because --backup names it",
                info.key,
                self.catalog.flag_reason(info.key),
            )
        log.info(
            "restoring %s (%s, created %s)",
            info.key,
            info.backup.database,
            info.backup.created.isoformat(),
        )
        return info

    def restore(
        self,
        database: str,
        target: str,
        key: str | None,
        drop_existing: bool,
        with_globals: bool = False,
        no_owner: bool = False,
    ) -> None:
        info = self.choose(database, key)
        spool_dir = self.config.backup.spool_dir
        with (
            passfile(self.config.postgres.password, spool_dir) as password,
            Decryption.open(self.config.encryption, spool_dir) as decryption,
        ):
            server = Server(self.config.postgres, password)
            if with_globals:
                self._restore_globals(server, decryption)
            pg_dump_path = self.config.postgres.pg_dump_path
            reader = Reader(self.storage, spool_dir, self.trust, decryption, pg_dump_path)
            custom = info.backup.extension.startswith(CUSTOM_EXTENSION)
            survey = TargetSurvey(server, target, "pg_restore" if custom else "psql", pg_dump_path)
            with contextlib.ExitStack() as cleanup:
                cleanup.callback(survey.discard)
                got = cleanup.enter_context(fetched_and_read(reader, info))
                loading_started = time.monotonic()
                with step("target"):
                    state = survey.state()
                    self._prepare_target(server, target, drop_existing, state)
                    survey.take_scratch()
                with step("load"):
                    try:
                        self.load_into(
                            got.path, info, decryption, server, target, no_owner, got.sql, state
                        )
                    except MoonflowerError as error:
                        raise RestoreError(
                            "load",
                            f"{error}{owner_hint(str(error))}; the database {target} was left "
                            "as it is for inspection",
                        ) from None
                load = time.monotonic() - loading_started
        download, check = got.download_seconds, got.check_seconds
        log.info(
            "restored %s into database %s: %s in %.1f s (download %.1f s, check %.1f s, "
            "load %.1f s at %s/s of backup)",
            info.key,
            target,
            human_size(info.size),
            download + check + load,
            download,
            check,
            load,
            human_size(info.size / load) if load > 0 else "-",
        )

    def load_into(
        self,
        path: Path,
        info: BackupInfo,
        decryption: Decryption,
        server: Server,
        target: str,
        no_owner: bool,
        sql: PlainSql | None,
        state: TargetState | None = None,
    ) -> None:
        """Load a backup already read to the end (`sql` is what that read found; None for
        the custom format), with the client the survey of the target chose when it fits."""
        if sql is None:
            with plain_dump_file(path, info, decryption, self.config.backup.spool_dir) as dump:
                tool = self._loader("pg_restore", server, state)
                argv = [
                    str(tool.path),
                    "--no-password",
                    "--exit-on-error",
                    f"--jobs={self.jobs}",
                    f"--dbname={conninfo_dbname(target)}",
                ]
                if no_owner:
                    argv.append("--no-owner")
                stage_ = Stage("pg_restore", [*argv, str(dump)], env=server.environment(target))
                with open(os.devnull, "wb") as output:
                    runner.run([stage_], output=output)
            return
        psql = self._loader("psql", server, state)
        loading = restricted_psql(psql, server.environment(target), sql)
        with decoding_stages(path, decryption, info) as stages:
            run_with_progress([*stages, *loading], path, "loading", os.devnull)

    def _restore_globals(self, server: Server, decryption: Decryption) -> None:
        """Roles and tablespaces first. Roles the server already has are left as they are
        (their passwords, attributes and memberships), unless `overwrite_roles`."""
        with step("globals"):
            try:
                info = self.catalog.newest(GLOBALS_SHOWN, globals_=True)
            except MoonflowerError as error:
                raise RestoreError("globals", str(error)) from None
            log.info("restoring the globals from %s", info.key)
            psql = newest_client("psql", server.version(), self.config.postgres.pg_dump_path)
            environment = server.environment(MAINTENANCE_DATABASE)
            spool_dir = self.config.backup.spool_dir
            existing = frozenset() if self.overwrite_roles else server.roles()
            roles = RoleFilter(existing)
            with (
                fetched(self.storage, info, spool_dir, self.trust) as path,
                spool_file(spool_dir, ".sql") as sql_file,
                spool_file(spool_dir, ".filtered.sql") as filtered,
            ):
                sql = read_plain_to_the_end(path, decryption, info, spool_dir)
                with (
                    decoding_stages(path, decryption, info) as stages,
                    path.open("rb") as encoded,
                    sql_file.open("wb") as decoded,
                ):
                    runner.run(stages, output=decoded, source=encoded)
                with (
                    sql_file.open(encoding="utf-8", errors="surrogateescape") as source,
                    filtered.open("w", encoding="utf-8", errors="surrogateescape") as out,
                ):
                    out.writelines(roles.lines(source))
                loading = restricted_psql(psql, environment, sql, stop_on_error=False)
                with filtered.open("rb") as source, open(os.devnull, "wb") as devnull:
                    runner.run(loading, output=devnull, source=source)
            log.info("globals restored; created role(s): %s", ", ".join(roles.created) or "none")
            if roles.kept:
                log.info(
                    "roles the server already had were left as they are: %s "
                    "(--overwrite-roles applies the backup's attributes and memberships)",
                    ", ".join(roles.kept),
                )

    def _loader(self, program: str, server: Server, state: TargetState | None) -> ClientTool:
        if state is not None and state.loader.path.name == program:
            return state.loader
        return newest_client(program, server.version(), self.config.postgres.pg_dump_path)

    def _prepare_target(
        self, server: Server, target: str, drop_existing: bool, state: TargetState
    ) -> None:
        try:
            if state.exists:
                contents = state.contents
                if contents and not drop_existing:
                    held = ", ".join(f"{count} {kind}(s)" for kind, count in contents.items())
                    raise RestoreError(
                        "target",
                        f"database {target} is not empty (it holds {held}); a restore would "
                        "merge into it, so restore into a new database, or add "
                        "--drop-existing to drop and recreate it",
                    )
                if contents:
                    log.warning("dropping and recreating database %s (--drop-existing)", target)
                    server.drop(target)
                    server.create(target)
            else:
                log.info("creating database %s", target)
                if state.scratch is not None:
                    server.rename(state.scratch, target)
                else:
                    server.create(target)
        except RestoreError:
            raise
        except MoonflowerError as error:
            raise RestoreError("target", str(error)) from None
