"""Start-up failures in one line, with documented exit codes (no traceback for what a user can fix).

``zapvisor run`` exits with:

- ``0``: stopped cleanly (SIGTERM / SIGINT);
- ``1``: crashed (a bug: the traceback is logged);
- ``2``: bad usage or configuration (``api.cli``);
- ``3`` (:data:`EXIT_UNREACHABLE`): the store (PostgreSQL) or the bus (Redis) cannot be reached at
  start — the line names ``host:port``, never the password;
- ``4`` (:data:`EXIT_ADDRESS`): the API cannot listen on ``api.host:api.port`` (in use, or not an
  address of this machine);
- ``5`` (:data:`EXIT_PATH`): ``node.data_dir`` (or the SQLite file's or media directory) cannot be
  written.

:func:`preflight` checks what it can before anything starts (paths writable, the database and
Redis accepting TCP connections); :func:`explain` turns what still fails during start-up (the port
taken, a database that refuses us) into the same kind of line. :func:`preflight` blocks (plain
sockets, the file system): the daemon calls it before ``trio.run``, never on the trio thread.
"""

from __future__ import annotations

import errno
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from config import Settings

EXIT_UNREACHABLE = 3
EXIT_ADDRESS = 4
EXIT_PATH = 5

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection to PostgreSQL or Redis at start: a server on the local
network answers in milliseconds; one that does not within this is not usable."""

_ADDRESS_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)


class StartupError(Exception):
    """A start-up failure the user can fix: ``str()`` is the one line to print, ``exit_code`` the code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def preflight(settings: Settings) -> None:
    """Check the paths and the servers the daemon needs before it starts anything.

    Raises:
        StartupError: a path cannot be written (EXIT_PATH) or a server refuses connections
            (EXIT_UNREACHABLE).
    """
    node = settings.node
    _writable(node.data_dir, "node.data_dir")
    if settings.store.backend == "sqlite":
        _writable(Path(settings.store.sqlite_path).parent, "store.sqlite_path")
    _writable(Path(settings.media.dir), "media.dir")
    if settings.store.backend == "postgres":
        _reachable("PostgreSQL", settings.store.postgres_dsn, 5432, "store.postgres_dsn")
    if settings.bus.backend == "redis":
        _reachable("Redis", settings.bus.redis_url, 6379, "bus.redis_url")


def explain(error: BaseException, settings: Settings) -> StartupError | None:
    """The one-line account of a start-up failure inside ``error``, or None for a real crash.

    Looks through exception groups, ``__cause__`` chains and the runtime's StartFailed causes.
    """
    for exc in _leaves(error):
        if isinstance(exc, OSError) and exc.errno in _ADDRESS_ERRORS:
            api = settings.api
            return StartupError(
                f"cannot listen on {api.host}:{api.port}: {exc.strerror or exc} "
                "(another process on that port? set api.port / ZAPVISOR_API__PORT)", EXIT_ADDRESS)
    for exc in _leaves(error):
        name = type(exc).__name__
        if name in ("StoreUnavailable", "InvalidPasswordError", "InvalidCatalogNameError",
                    "InvalidAuthorizationSpecificationError"):
            where = _host_port(settings.store.postgres_dsn, 5432) if settings.store.backend == "postgres" else "?"
            return StartupError(f"the store did not start: PostgreSQL at {where}: {exc} "
                                "(check store.postgres_dsn)", EXIT_UNREACHABLE)
        if name == "BusUnavailable":
            return StartupError(f"the bus did not start: Redis at {_host_port(settings.bus.redis_url, 6379)}: "
                                f"{exc} (check bus.redis_url)", EXIT_UNREACHABLE)
    return None


def _writable(directory: Path, key: str) -> None:
    probe = directory / f".zapvisor-write-test-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"cannot write to {key} {directory}: {exc.strerror or exc} "
                           f"(check {key} and the permissions of that path)", EXIT_PATH) from None


def _reachable(server: str, url: str | None, default_port: int, key: str) -> None:
    target = _address(url, default_port)
    if target is None:
        return  # a unix socket, several hosts: the store or bus says what is wrong when it starts
    try:
        socket.create_connection(target, timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise StartupError(f"cannot connect to {server} at {target[0]}:{target[1]}: {reason} "
                           f"(is it running and reachable? check {key})", EXIT_UNREACHABLE) from None


def _address(url: str | None, default_port: int) -> tuple[str, int] | None:
    """``(host, port)`` of a URL with one TCP host; None otherwise. Never looks at the password."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or default_port
    except ValueError:
        return None
    if not host or "," in (parts.netloc or ""):
        return None
    return host, port


def _host_port(url: str | None, default_port: int) -> str:
    target = _address(url, default_port)
    return "?" if target is None else f"{target[0]}:{target[1]}"


def _leaves(error: BaseException):
    """Every exception inside ``error``: group members, causes and StartFailed causes, depth first."""
    stack, seen = [error], set()
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        cause = getattr(exc, "cause", None)
        for inner in (exc.__cause__, exc.__context__, cause if isinstance(cause, BaseException) else None):
            if inner is not None:
                stack.append(inner)
