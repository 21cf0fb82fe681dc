"""A throwaway redis-server for the tests and the benchmarks (the one copy of the start-up code).

The server runs from the installed binary on a free port of 127.0.0.1, in a private temporary
directory, with persistence off (``--save "" --appendonly no``): a restart therefore starts
empty, exactly like losing a cache node, which is what the fault tests want to exercise.

Everything here is blocking (subprocess, sockets): call it from synchronous fixtures or from a
worker thread (``trio.to_thread.run_sync``), never from the trio thread.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs

#: Seconds to wait for a started server to answer PING, or for a stopped one to exit.
#: Generous because two CPU cores are shared by several test suites at once.
_READY_TIMEOUT = 20.0

#: Pause between readiness probes: short, the server is usually up in a few milliseconds.
_PROBE_INTERVAL = 0.01

#: Start attempts when the chosen free port is taken by someone else in the meantime.
_PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    """The throwaway redis-server could not be started or stopped (the message carries its log)."""


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_ping(port: int) -> bool:
    """Whether a Redis server on ``port`` answers an inline PING right now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@attrs.define(eq=False)
class RedisServer:
    """One throwaway redis-server process that can be stopped, paused and restarted on its port.

    ``start()`` picks a free port the first time and keeps it, so clients configured with
    ``url`` reconnect to the restarted server by themselves.
    """

    binary: str = attrs.field(factory=lambda: shutil.which("redis-server") or "/usr/bin/redis-server")
    port: int | None = None
    _dir: Path = attrs.field(init=False, factory=lambda: Path(tempfile.mkdtemp(prefix="zv-redis-")))
    _proc: subprocess.Popen | None = attrs.field(init=False, default=None)

    @property
    def url(self) -> str:
        """``redis://`` URL of the server (valid once started)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, None when stopped."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the server and wait until it answers PING.

        Raises:
            RedisServerError: the binary is missing, or the server did not come up (log attached).
        """
        if not Path(self.binary).is_file():
            raise RedisServerError(f"redis-server binary not found at {self.binary!r}")
        if self.port is not None:  # a restart: clients know this port, keep it
            if self._spawn():
                return
            raise RedisServerError(
                f"redis-server could not start again on port {self.port}; log:\n{self._log()}"
            )
        for _ in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            if self._spawn():
                return
        raise RedisServerError(f"redis-server did not start; log:\n{self._log()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers); a no-op when not running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=_READY_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self) -> None:
        """Stop and start again on the same port; the data set comes back empty."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections still open (the kernel accepts them) but nothing answers."""
        self._require_running().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        self._require_running().send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _require_running(self) -> subprocess.Popen:
        if self._proc is None:
            raise RedisServerError("redis-server is not running")
        return self._proc

    def _spawn(self) -> bool:
        """Start on ``self.port``; True once it answers, False if it exited (port stolen)."""
        log = open(self._dir / "redis.log", "ab")
        with log:
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self._dir),
                    "--daemonize", "no",
                    "--loglevel", "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._dir,
                start_new_session=True,  # a Ctrl-C of the test run must not reach it first
            )
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if _answers_ping(self.port):
                return True
            if self._proc.poll() is not None:
                self._proc = None
                return False
            time.sleep(_PROBE_INTERVAL)
        self.stop()
        raise RedisServerError(f"redis-server on port {self.port} did not answer PING; log:\n{self._log()}")

    def _log(self) -> str:
        try:
            return (self._dir / "redis.log").read_text(errors="replace")[-4000:]
        except OSError as exc:
            return f"(no log: {exc})"

