"""One zapvisor node: the components built from the settings, and the tree that runs them.

:func:`open_node` is what ``zapvisor run`` and the end-to-end tests use::

    async with open_node(settings) as node:
        ... node.system, node.store, node.board, node.manager ...

The tree (DESIGN §3)::

    /                       one_for_one
    ├── /infra              rest_for_one: store → bus → board → hub → cluster (a failed store restarts
    │                       what needs it; cluster: this node's membership heartbeats)
    ├── /workers            the neonize worker processes (only when sessions use neonize)
    ├── /tenants            dynamic: /tenants/<id>/{sessions,tickets}
    └── /services           one_for_one: sessions (the manager), tickets, outbox, media, webhooks, campaigns,
                            janitor

``/tenants`` starts before ``/services`` because the session manager restores
sessions into it as soon as it starts.

Components are live objects hosted by :class:`~actors.node._host.Hosted` actors;
the node keeps references to them so request handlers reach them without
walking the tree. Everything else talks to actors with ``ask``/``tell``.
"""

from __future__ import annotations

import functools
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import attrs

from actors.bus import Bus, bus_from_url
from actors.campaigns import CampaignDeps, CampaignService, CampaignServiceDeps, InboundTap
from actors.cluster import Member, Membership, StoredCredentials
from actors.flows import Flows, build_flows
from actors.drivers import DriverFactory, SimulatedDriver, SimulatedDriverConfig
from actors.drivers.neonize import NeonizeDriver, PoolSettings, WorkerPool
from actors.hub import Hub
from actors.lifecycle import Janitor, Sweeper
from actors.webhooks import Webhooks
from actors.sessions import (
    CacheLimits,
    GatedStore,
    InboundSink,
    SessionDeps,
    SessionInfo,
    SessionPolicy,
    SessionPool,
    StatusBoard,
    UpstreamGate,
    store_gate,
    tenants_spec,
)
from actors.store import NotFound, PostgresBackend, SqliteBackend, Store
from config import Settings
from supervisor import (
    ActorFailed,
    ActorRef,
    ActorStopped,
    AskTimeout,
    ActorSystem,
    Backoff,
    ChildSpec,
    CircuitBreaker,
    Jitter,
    RestartLimiter,
    Strategy,
    Supervisor,
    open_actor_system,
)

from ._host import Hosted, HostedWithSystem
from ._manager import Drain, SessionManager

_LOG = logging.getLogger("zapvisor.node")

STORE_START_TIMEOUT = 60.0
"""Seconds the store may take to connect and migrate before its start counts as failed."""

DRAIN_TIMEOUT = 30.0
"""Seconds a drain may take: every session closes its connection (each within its own grace)."""



@attrs.define(eq=False)
class Node:
    """The components of one node (built by :func:`build_node`, run by :func:`open_node`)."""

    settings: Settings
    store: Store
    bus: Bus
    board: StatusBoard
    limiter: RestartLimiter
    deps: SessionDeps
    session_backoff: Backoff
    session_breaker: CircuitBreaker
    flows: Flows | None = None  # tickets, inbound sink, outbox, media (services)
    campaigns: CampaignServiceDeps | None = None  # the campaigns service's (built with the hub)
    workers: WorkerPool | None = None  # the neonize worker processes, when sessions use neonize
    system: ActorSystem | None = None
    local: set[str] = attrs.Factory(set)  # sessions this node runs (placed here, or started here by request)
    membership: Membership = attrs.field(default=attrs.Factory(lambda n: n._membership(), takes_self=True))
    hub: Hub = attrs.field(default=attrs.Factory(lambda n: Hub(n.settings.node.node_id, n.bus, n.board), takes_self=True))
    sweeper: Sweeper = attrs.field(default=attrs.Factory(lambda n: n._sweeper(), takes_self=True))
    webhooks: Webhooks = attrs.field(default=attrs.Factory(
        lambda n: Webhooks.from_settings(n.settings.webhooks, n.store, api=n.settings.api, board=n.board, hub=n.hub,
                                         store_gate=n.deps.store_gate),
        takes_self=True))

    def _membership(self) -> Membership:
        node = self.settings.node
        me = Member(node.node_id, node.advertised_url, self.settings.sessions.max_sessions)

        def running():
            return [info.to_dict() for sid in tuple(self.local) if (info := self.board.get(sid)) is not None]

        return Membership(self.bus, me, node.heartbeat_interval, node.member_ttl, running=running)

    def _sweeper(self) -> Sweeper:
        """The data lifecycle's sweeper (retention and purges; the janitor runs it)."""
        settings = self.settings
        neonize_pg = settings.sessions.driver == "neonize" and settings.store.backend == "postgres"
        return Sweeper(settings.retention, self.store, Path(settings.media.dir), Path(settings.node.data_dir) / "auth",
                       gate=self.deps.store_gate, device_store=settings.store.postgres_dsn if neonize_pg else None,
                       journal_dir=Path(settings.node.data_dir) / "journal")

    async def drain(self) -> None:
        """Leave the cluster gracefully (SIGTERM): announce it, then stop every session here
        without logging out, releasing their leases at once so the others take over now.

        A cluster of one (the memory bus) has nobody to hand over to: its sessions stop with
        the tree, after the services (the outbox finishes its sends in flight first)."""
        if self.membership.solo:
            return
        await self.membership.leave()  # without the bus, the others notice when our heartbeats stop
        try:
            await self.manager.ask(Drain(), timeout=DRAIN_TIMEOUT)
        except (AskTimeout, ActorStopped, ActorFailed) as exc:  # the tree's stop ends the sessions anyway
            _LOG.warning("drain incomplete (%s: %s); the sessions stop with the tree", type(exc).__name__, exc)
        self.membership.beat_now()  # "I run nothing now": the others start what they waited for

    @property
    def manager(self) -> ActorRef:
        """The session manager (``/services/sessions``)."""
        return self.system.ref("/services/sessions")

    def specs(self) -> list[ChildSpec]:
        """The root's children, in start order."""
        infra = [
            ChildSpec("store", functools.partial(Hosted, self.store.run), start_timeout=STORE_START_TIMEOUT),
            ChildSpec("bus", functools.partial(Hosted, self.bus.run), start_timeout=STORE_START_TIMEOUT),
            ChildSpec("board", functools.partial(HostedWithSystem, self.board.run)),
            ChildSpec("hub", functools.partial(HostedWithSystem, self.hub.run)),
            ChildSpec("cluster", functools.partial(Hosted, self.membership.run)),
        ]
        services = [ChildSpec("sessions", lambda: SessionManager(self), shutdown=30.0), *self.flows.specs(),
                    ChildSpec("webhooks", functools.partial(HostedWithSystem, self.webhooks.run)),
                    ChildSpec("campaigns", lambda: CampaignService(self.campaigns), shutdown=10.0),
                    ChildSpec("janitor", lambda: Janitor(self.sweeper, self.bus, self.settings.node.node_id))]
        supervision = self.settings.supervision
        workers = [] if self.workers is None else [
            ChildSpec("workers", functools.partial(Hosted, self.workers.run), shutdown=30.0)
        ]
        return [
            ChildSpec("infra", lambda: Supervisor(infra, strategy=Strategy.REST_FOR_ONE, intensity=5, period=30.0)),
            *workers,
            # before the services: the session manager restores sessions into it as soon as it starts
            tenants_spec(),
            ChildSpec("services", lambda: Supervisor(services, intensity=supervision.root_intensity + 2,
                                                     period=supervision.root_period)),
        ]


def build_node(
    settings: Settings, *, inbound: InboundSink | None = None, driver_factory: DriverFactory | None = None
) -> Node:
    """Build every component from ``settings`` (no I/O yet).

    ``inbound`` and ``driver_factory`` replace the defaults (the store-backed sink,
    the driver named by ``sessions.driver``); tests use them.
    """
    sup = settings.supervision
    limiter = RestartLimiter(rate=sup.restart_rate, burst=sup.restart_burst, max_concurrent=sup.restart_max_concurrent)
    store = Store(_store_backend(settings), max_batch=settings.store.batch_max_ops,
                  linger=settings.store.batch_max_ms / 1000)
    board = StatusBoard(debounce=settings.sessions.status_debounce, persist=functools.partial(_persist, store))
    bus = bus_from_url(settings.bus.redis_url if settings.bus.backend == "redis" else "memory://")
    sessions = settings.sessions
    workers = WorkerPool(PoolSettings.from_config(settings.workers)) if sessions.driver == "neonize" else None
    gate = store_gate()  # one per node: sessions and services wait out a store outage together
    flows = build_flows(settings, store, bus, board, limiter, store_gate=gate)
    deps = SessionDeps(
        driver_factory=driver_factory or _driver_factory(settings, workers, store),
        board=board,
        pool=SessionPool(sessions.max_sessions),
        bus=bus,
        limiter=limiter,
        inbound=inbound or flows.inbound,
        upstream=UpstreamGate(),
        store_gate=gate,
        node_id=settings.node.node_id,
        # groups reach the inbound sink, which applies each session's own allow_groups
        policy=attrs.evolve(SessionPolicy.from_settings(sessions), allow_groups=True),
        cache_limits=CacheLimits(sessions.cache_chats, sessions.cache_contacts, sessions.cache_messages),
        presence=flows.inbound.presence,  # presence.updated to the tenant's agents
    )
    node = Node(
        settings=settings,
        flows=flows,
        workers=workers,
        store=store,
        bus=bus,
        board=board,
        limiter=limiter,
        deps=deps,
        session_backoff=Backoff(
            min=sup.backoff_min, max=sup.backoff_max, multiplier=sup.backoff_multiplier,
            jitter=Jitter(sup.backoff_jitter), reset_after=sup.backoff_reset_after,
        ),
        session_breaker=CircuitBreaker(
            threshold=sup.breaker_threshold, window=sup.breaker_window, cooldown=sup.breaker_cooldown,
            half_open_trials=sup.breaker_half_open_trials,
        ),
    )
    # inbound messages pass the campaigns' tap on their way to the hub (stop words, replies)
    tap = InboundTap(node.hub)
    node.campaigns = CampaignServiceDeps(
        CampaignDeps(GatedStore(store, gate), settings.campaigns, settings.node.node_id, bus, publisher=node.hub),
        limiter, tap)
    flows.attach(tap)
    return node


@asynccontextmanager
async def open_node(
    settings: Settings, *, inbound: InboundSink | None = None, driver_factory: DriverFactory | None = None
) -> AsyncIterator[Node]:
    """Build the node, start its tree, yield it; stop everything gracefully on exit."""
    node = build_node(settings, inbound=inbound, driver_factory=driver_factory)
    supervision = settings.supervision
    async with open_actor_system(
        node.specs(), intensity=supervision.root_intensity, period=supervision.root_period
    ) as system:
        node.system = system
        node.board.wall_clock = system.wall_time
        yield node


def _store_backend(settings: Settings) -> SqliteBackend | PostgresBackend:
    if settings.store.backend == "postgres":
        return PostgresBackend(settings.store.postgres_dsn)
    return SqliteBackend(Path(settings.store.sqlite_path))


@attrs.frozen
class StoreDeviceBook:
    """A neonize session's device JID kept in its sessions row (``device_jid``), where every node reads it.

    A session that exists only in the tree (tests, tools) has no row: it has no
    device to resume, and a device it pairs is not remembered.
    """

    store: Store

    async def device_jid(self, session_id: str) -> str | None:
        record = await self.store.get_session(session_id)
        return record.device_jid if record is not None else None

    async def set_device_jid(self, session_id: str, jid: str | None) -> None:
        try:
            await self.store.set_session_device(session_id, jid)
        except NotFound:
            pass


def _driver_factory(settings: Settings, workers: WorkerPool | None, store: Store) -> DriverFactory:
    """Simulated sessions talk to the simulator; neonize ones to WhatsApp through the worker pool.

    Both keep each session's credentials where the store lives: files under
    ``<data_dir>/auth`` (one SQLite file per neonize session), or the PostgreSQL
    database, where every node of a cluster reaches them (the simulated driver's in
    ``driver_credentials``; neonize's in whatsmeow's ``whatsmeow_*`` tables, where the
    session's device JID, kept in its sessions row, selects its device).
    Both journal inbound messages under ``<data_dir>/journal`` (see :mod:`actors.drivers._journal`).
    """
    sessions, auth_dir = settings.sessions, Path(settings.node.data_dir) / "auth"
    journal_dir = Path(settings.node.data_dir) / "journal"  # inbound journals: see actors.drivers._journal
    if sessions.driver == "simulated":
        keeper = StoredCredentials(store) if settings.store.backend == "postgres" else None
        config = SimulatedDriverConfig(url=sessions.simulator_url, auth_dir=auth_dir, keeper=keeper,
                                       journal_dir=journal_dir)
        return functools.partial(SimulatedDriver, config=config)

    def neonize_driver(session_id: str) -> NeonizeDriver:
        if settings.store.backend == "postgres":
            credentials = settings.store.postgres_dsn
        else:
            auth_dir.mkdir(parents=True, exist_ok=True)
            credentials = str(auth_dir / f"{session_id}.sqlite3")
        return NeonizeDriver(session_id, workers, credentials, qr_limit=sessions.qr_limit,
                             devices=StoreDeviceBook(store), journal_dir=journal_dir)

    return neonize_driver


async def _persist(store: Store, batch: tuple[SessionInfo, ...]) -> None:
    """Write a debounced batch of statuses: one op, one statement (a node bringing hundreds of
    sessions up flushes them all at once; one write each made every one of them a round trip
    inside the same transaction, seconds of it on a busy machine, with every other write behind)."""
    await store.set_session_statuses([(info.session_id, info.status.value, info.reason) for info in batch])
