"""Throwaway database servers for the tests and the benchmarks (one copy of the start-up code).

PostgreSQL refuses to run as root, so when this process is root the server is initialised and run
as the ``postgres`` user through ``runuser``; its data directory and unix socket live in a private
temporary directory owned by that user, and it listens on a free TCP port of 127.0.0.1 so nothing
collides with a system service or with another engineer's server.

Everything here is blocking (subprocess): call it from synchronous fixtures or from a worker
thread, never from the trio thread.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import attrs

#: Where a Debian-style install puts the server binaries; the highest version wins.
_DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"

#: Settings for a throwaway server. fsync stays ON: the benchmarks measure durable commits,
#: and the store's "acknowledged after COMMIT" promise means nothing on a server that lies.
#: The rest keeps a small, quick server on a shared 2-core machine.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "100",
    "shared_buffers": "64MB",
    "full_page_writes": "off",  # throwaway data: torn pages after an OS crash do not matter
    "max_wal_size": "1GB",  # no checkpoint storms in the middle of a benchmark
    "log_min_messages": "warning",
}

#: Seconds pg_ctl waits for the server to accept connections (start) or to go away (stop).
_PG_CTL_TIMEOUT = 60


class ServerError(RuntimeError):
    """A throwaway server could not be initialised, started or stopped (the message carries its log)."""


def find_pg_bindir() -> Path:
    """Locate the PostgreSQL server binaries.

    Order: ``$ZAPVISOR_PG_BINDIR``, the newest ``/usr/lib/postgresql/*/bin``, then ``pg_ctl`` on PATH.

    Raises:
        ServerError: no directory holding both ``initdb`` and ``pg_ctl`` was found.
    """
    candidates: list[str] = []
    if env := os.environ.get("ZAPVISOR_PG_BINDIR"):
        candidates.append(env)
    candidates.extend(
        sorted(glob.glob(_DEBIAN_BINDIRS), key=lambda p: int(Path(p).parent.name), reverse=True)
    )
    if on_path := shutil.which("pg_ctl"):
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    raise ServerError(f"PostgreSQL binaries not found (looked in {candidates}); set ZAPVISOR_PG_BINDIR")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@attrs.define(eq=False)
class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary directory.

    Use :meth:`start` / :meth:`stop` / :meth:`restart` (the fault tests restart it under load) and
    :meth:`destroy` to remove everything. Connect with :meth:`dsn`; the superuser is ``postgres``
    with trust authentication, over TCP on ``port``.
    """

    bindir: Path
    root: Path
    port: int
    _as_postgres: list[str]

    @classmethod
    def create(cls, bindir: Path | None = None, base_dir: str | None = None) -> PostgresServer:
        """initdb a fresh cluster in a new temporary directory under ``base_dir`` (not started yet).

        ``base_dir`` None means the system temporary directory (a real disk here: what the
        benchmarks want, so a COMMIT's fsync costs what it costs); tests pass a tmpfs such as
        ``/dev/shm`` for speed.

        Raises:
            ServerError: initdb failed (its output is in the message).
        """
        bindir = bindir or find_pg_bindir()
        root = Path(tempfile.mkdtemp(prefix="zapvisor-pg-", dir=base_dir))
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            shutil.chown(root, "postgres", "postgres")
        server = cls(bindir=bindir, root=root, port=free_port(), as_postgres=as_postgres)
        server._run(
            str(bindir / "initdb"), "-D", str(server.datadir), "-U", "postgres",
            "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C",
        )
        settings = dict(_SERVER_SETTINGS, unix_socket_directories=f"'{server.root}'")
        with open(server.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        return server

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg DSN for ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` (with the ``createdb`` client); returns its DSN.

        Raises:
            ServerError: createdb failed.
        """
        result = subprocess.run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"createdb {name} failed ({result.returncode}): {result.stderr.strip()}")
        return self.dsn(name)

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        Raises:
            ServerError: pg_ctl failed (the server log is in the message).
        """
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "server.log"),
            "-o", f"-p {self.port}", "-w", "-t", str(_PG_CTL_TIMEOUT), "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` disconnects clients and rolls back their transactions;
        ``immediate`` is a crash: no shutdown checkpoint, recovery at the next start)."""
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
            "-w", "-t", str(_PG_CTL_TIMEOUT), "stop",
        )

    def restart(self, mode: str = "fast") -> None:
        """Stop then start again on the same port."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if (self.datadir / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            [*self._as_postgres, *argv], capture_output=True, text=True, check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerError(
                f"{' '.join(argv[:1])} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )
