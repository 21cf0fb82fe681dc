"""A node's session layer wired for tests: real actor system, real simulator (or neonize), memory bus.

``session_node`` builds the tree ``/tenants/t1/sessions`` with a shared
:class:`SessionDeps` whose inbound sink keeps every stored message in memory
(the store-backed sink belongs to the flows). Helpers wait on the status board.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from actors.bus import MemoryBus, open_bus
from actors.drivers import DriverFactory, Message, Receipt, SimulatedDriver, SimulatedDriverConfig
from actors.sessions import (
    InboundDefaults,
    SessionDeps,
    SessionInfo,
    SessionPolicy,
    SessionPool,
    SessionStatus,
    StatusBoard,
    session_spec,
    tenant_spec,
    tenants_spec,
)
from supervisor import ActorSystem, Backoff, CircuitBreaker, Jitter, RestartLimiter, SupervisorRef, open_actor_system

FAST_POLICY = SessionPolicy(
    qr_limit=3,
    never_connected_timeout=30.0,
    stuck_connecting_timeout=5.0,
    probe_interval=(0.3, 0.5),
    probe_timeout=0.5,
    probe_failures=2,
    degraded_timeout=1.0,
    inbound_silence=60.0,
    lease_ttl=3.0,
)
FAST_BACKOFF = Backoff(min=0.1, max=0.4, jitter=Jitter.NONE, reset_after=30.0)


@attrs.define(eq=False)
class MemoryInbound(InboundDefaults):
    """An InboundSink that keeps messages in memory; ``deliveries`` counts every message handed
    to ``deliver`` (a message delivered twice counts twice)."""

    stored: dict[tuple[str, str], Message] = attrs.field(factory=dict)
    deliveries: int = 0
    receipts: list[Receipt] = attrs.field(factory=list)

    async def deliver(self, session_id: str, tenant_id: str, messages: Sequence[Message]) -> None:
        await trio.lowlevel.checkpoint()
        self.deliveries += len(messages)
        for message in messages:
            self.stored.setdefault((session_id, message.id), message)

    async def receipt(self, session_id: str, tenant_id: str, receipt: Receipt) -> None:
        self.receipts.append(receipt)


async def wait_status(
    board: StatusBoard, session_id: str, *statuses: SessionStatus, timeout: float = 20.0,
    where: Callable[[SessionInfo], bool] = lambda info: True,
) -> SessionInfo:
    """Wait until the session shows one of ``statuses`` (and ``where`` holds).

    Subscribes to the board, so even a status that lasts a millisecond is seen.
    """
    with trio.fail_after(timeout), board.subscribe() as changes:
        info = board.get(session_id)
        while info is None or info.session_id != session_id or info.status not in statuses or not where(info):
            info = await changes.receive()
        return info


@attrs.define(eq=False)
class SessionNode:
    system: ActorSystem
    sessions: SupervisorRef
    deps: SessionDeps
    board: StatusBoard
    inbound: MemoryInbound
    backoff: Backoff
    breaker: CircuitBreaker | None

    async def add(self, session_id: str):
        spec = session_spec(session_id, "t1", self.deps, backoff=self.backoff, breaker=self.breaker)
        return await self.sessions.start_child(spec)

    def status(self, session_id: str) -> SessionInfo | None:
        return self.board.get(session_id)

    async def wait_status(
        self, session_id: str, *statuses: SessionStatus, timeout: float = 20.0,
        where: Callable[[SessionInfo], bool] = lambda info: True,
    ) -> SessionInfo:
        return await wait_status(self.board, session_id, *statuses, timeout=timeout, where=where)

    async def wait_actor_state(self, session_id: str, state: str, timeout: float = 10.0) -> None:
        """Wait until the session's actor shows ``state`` in the supervision tree."""
        with trio.fail_after(timeout):
            while self.actor_state(session_id) != state:
                await trio.sleep(0.005)

    def actor_state(self, session_id: str) -> str:
        return self.system.tree().find(f"/tenants/t1/sessions/{session_id}").state


@asynccontextmanager
async def open_session_node(
    driver_config: SimulatedDriverConfig | None,
    *,
    driver_factory: DriverFactory | None = None,
    policy: SessionPolicy = FAST_POLICY,
    max_sessions: int = 50,
    limiter: RestartLimiter | None = None,
    backoff: Backoff = FAST_BACKOFF,
    breaker: CircuitBreaker | None = CircuitBreaker(threshold=3, window=60.0, cooldown=2.0),
    bus: MemoryBus | None = None,
) -> AsyncIterator[SessionNode]:
    limiter = limiter or RestartLimiter(rate=200.0, burst=200, max_concurrent=100)
    board = StatusBoard(debounce=0.05)
    inbound = MemoryInbound()
    async with open_bus(bus or MemoryBus()) as bus:
        deps = SessionDeps(
            driver_factory=driver_factory or functools.partial(SimulatedDriver, config=driver_config),
            board=board, pool=SessionPool(max_sessions), bus=bus, limiter=limiter, inbound=inbound, policy=policy,
        )
        async with open_actor_system([tenants_spec()], seed=1) as system:
            board.wall_clock = system.wall_time
            async with trio.open_nursery() as nursery:
                await nursery.start(board.run, system)
                await system.supervisor("/tenants").start_child(tenant_spec("t1", limiter))
                sessions = system.supervisor("/tenants/t1/sessions")
                yield SessionNode(system, sessions, deps, board, inbound, backoff, breaker)
                nursery.cancel_scope.cancel()


@pytest.fixture
async def session_node(simulated_driver_config) -> AsyncIterator[SessionNode]:
    async with open_session_node(simulated_driver_config) as node:
        yield node
