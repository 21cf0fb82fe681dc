"""Helpers of the neonize driver tests: a real worker pool, and a proxy whose dial never completes.

The hanging proxy is how a test holds a real neonize connection open without
WhatsApp: the worker's Go core dials WhatsApp through it, the proxy accepts the
TCP connection and never answers the CONNECT, so ``connect()`` stays blocked in
the dial (whatsmeow's 60 s deadline) until :meth:`HangingProxy.release` closes
the held connections and the Go call returns with a dial error. Events are
then fed through the client's real callback path with ``NeonizeDriver.inject``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio

from actors.drivers.neonize import NeonizeDriver, PoolSettings, WorkerPool

TEST_TIMEOUT_S = 60.0
"""Real processes on a shared 2-core machine: generous, but a hang still fails."""


@attrs.define(eq=False)
class HangingProxy:
    """A TCP listener on loopback that holds every connection until released."""

    port: int = 0
    accepted: int = 0
    _gate: trio.Event = attrs.field(factory=trio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, stream: trio.SocketStream) -> None:
        gate = self._gate
        self.accepted += 1
        async with stream:
            await gate.wait()

    def release(self) -> None:
        """Close every held connection (their dials fail); later ones are held again."""
        self._gate.set()
        self._gate = trio.Event()

    async def wait_accepted(self, count: int) -> None:
        """Until ``count`` connections were accepted since the start (a dial is in progress)."""
        while self.accepted < count:
            await trio.sleep(0.01)


@pytest.fixture
async def hanging_proxy(nursery: trio.Nursery) -> HangingProxy:
    proxy = HangingProxy()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, proxy._handle, 0, host="127.0.0.1"))
    proxy.port = listeners[0].socket.getsockname()[1]
    return proxy


@contextlib.asynccontextmanager
async def open_pool(**settings: Any) -> AsyncIterator[WorkerPool]:
    """A running pool whose workers are stopped on exit."""
    pool = WorkerPool(PoolSettings(**settings))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def running(driver: NeonizeDriver, failures: list[BaseException] | None = None) -> AsyncIterator[NeonizeDriver]:
    """Run ``driver`` for the block; its ``run()`` failure (if any) is appended to ``failures``."""

    async def run(*, task_status: trio.TaskStatus[None]) -> None:
        try:
            await driver.run(task_status=task_status)
        except Exception as exc:  # the test inspects it
            if failures is None:
                raise
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        yield driver
        nursery.cancel_scope.cancel()


async def next_event(driver: NeonizeDriver, timeout: float = 10.0) -> Any:
    with trio.fail_after(timeout):
        return await driver.events.receive()


@attrs.define
class MemoryDeviceBook:
    """A :class:`~actors.drivers.neonize.DeviceBook` in a dict (the node's keeps it in the store)."""

    jids: dict[str, str | None] = attrs.field(factory=dict)
    writes: list[tuple[str, str | None]] = attrs.field(factory=list)

    async def device_jid(self, session_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return self.jids.get(session_id)

    async def set_device_jid(self, session_id: str, jid: str | None) -> None:
        await trio.lowlevel.checkpoint()
        self.jids[session_id] = jid
        self.writes.append((session_id, jid))
