"""Run the simulator as a child process: for the demo, the benchmarks and the tests.

:class:`SimulatorProcess` starts ``python -m actors.simulator`` on a free port
(learned from its ready line), and can ``kill -9`` it and bring it back on the
same port with the same state directory, which is how the chaos tests and the
storm benchmark take WhatsApp "down".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from ._client import SimulatorControl
from ._serve import READY_PREFIX

STARTUP_TIMEOUT = 30.0
"""Seconds for the process to import and listen, generous for a loaded 2-core machine."""


@attrs.define(eq=False)
class SimulatorProcess:
    """One simulator subprocess; survives kill/restart cycles with the same port and state."""

    state_dir: Path
    args: tuple[str, ...] = ()
    port: int = 0
    process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Spawn the process and wait for its ready line (learning the port the first time)."""
        command = [sys.executable, "-m", "actors.simulator", "--port", str(self.port),
                   "--state-dir", str(self.state_dir), *self.args]
        self.process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
        line = b""
        with trio.fail_after(STARTUP_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await self.process.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError(f"simulator exited before it was ready (status {await self.process.wait()})")
                line += chunk
        text = line.decode().strip()
        if not text.startswith(READY_PREFIX):
            raise RuntimeError(f"unexpected first line from the simulator: {text!r}")
        self.port = int(text.rsplit(":", 1)[1])

    async def kill(self) -> None:
        """``kill -9`` the process and reap it."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def terminate(self) -> int:
        """SIGTERM (a clean stop that writes state); returns the exit status."""
        if self.process is None:
            raise RuntimeError("the simulator was never started")
        self.process.terminate()
        return await self.process.wait()

    async def restart(self, *, down_for: float = 0.0) -> None:
        """Kill, stay down ``down_for`` seconds, start again on the same port and state."""
        await self.kill()
        await trio.sleep(down_for)
        await self.start()

    @asynccontextmanager
    async def control(self) -> AsyncIterator[SimulatorControl]:
        """A control connection to this process, closed after the block."""
        async with SimulatorControl.open(self.url, timeout=STARTUP_TIMEOUT) as control:
            yield control
