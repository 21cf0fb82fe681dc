"""Session status: the values and the board every status change goes through.

A session's *status* is domain state (``qr``, ``connected``, ``banned``...), wider
than the supervision state of its actor (running, backoff, suspended). The
:class:`StatusBoard` keeps the latest :class:`SessionInfo` of every session,
pushes each change at once to subscribers (websocket clients, webhooks) and
hands them to ``persist`` *debounced*: a flapping session costs one database
write per ``debounce`` seconds, not one per change (seed 002).

It also watches the supervision events of session paths, so a session waiting
to restart shows ``backoff`` (with its time) and one whose breaker opened shows
``failed``.
"""

from __future__ import annotations

import enum
import logging
import math
from typing import Awaitable, Callable

import attrs
import trio

from supervisor import ActorSystem, EventKind

_LOG = logging.getLogger("zapvisor.sessions")


class SessionStatus(enum.StrEnum):
    STOPPED = "stopped"
    QUEUED = "queued"  # waiting for a slot in the node's session pool
    STARTING = "starting"  # waiting for the ownership lease
    CONNECTING = "connecting"
    QR = "qr"
    PAIRING = "pairing"
    CONNECTED = "connected"
    DEGRADED = "degraded"  # connected, but probes fail or keepalive is lost
    DISCONNECTED = "disconnected"
    BACKOFF = "backoff"
    LOGGED_OUT = "logged_out"
    BANNED = "banned"
    REPLACED = "replaced"
    OUTDATED = "outdated"
    FAILED = "failed"  # breaker open
    NEEDS_AUTH = "needs_auth"


TERMINAL = frozenset(
    {
        SessionStatus.LOGGED_OUT,
        SessionStatus.REPLACED,
        SessionStatus.OUTDATED,
        SessionStatus.NEEDS_AUTH,
    }
)
"""Statuses a session does not leave by itself; an operator must act (reconnect, re-pair)."""


@attrs.frozen
class SessionInfo:
    """The latest known status of one session. Times are Unix timestamps."""

    session_id: str
    tenant_id: str
    status: SessionStatus
    reason: str = ""
    since: float = 0.0
    until: float | None = None  # ban expiry, backoff end, breaker reopening
    qr: str | None = None
    qr_index: int | None = None
    pairing_code: str | None = None
    jid: str | None = None

    def to_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class BoardStatistics:
    updates: int
    published: int
    dropped_subscribers: int
    writes: int
    rows_written: int
    write_errors: int


SUBSCRIBER_BUFFER = 1000
"""Status changes a subscriber may fall behind by before it is dropped: never slow a session."""

Persist = Callable[[tuple[SessionInfo, ...]], Awaitable[None]]


@attrs.define(eq=False)
class StatusBoard:
    """Latest status per session; instant fan-out, debounced persistence.

    ``wall_clock`` converts trio time to Unix time (``ActorSystem.wall_time``),
    so tests under MockClock get consistent timestamps.
    """

    debounce: float = 5.0
    persist: Persist | None = None
    wall_clock: Callable[[float], float] = attrs.field(default=lambda t: t)
    _current: dict[str, SessionInfo] = attrs.field(factory=dict)
    _paths: dict[str, str] = attrs.field(factory=dict)  # actor path -> session id
    _dirty: dict[str, SessionInfo] = attrs.field(factory=dict)
    _dirty_event: trio.Event = attrs.field(factory=trio.Event)
    _subscribers: list[trio.MemorySendChannel] = attrs.field(factory=list)
    _stats: dict[str, int] = attrs.field(
        factory=lambda: dict.fromkeys(
            ("updates", "published", "dropped_subscribers", "writes", "rows_written", "write_errors"), 0
        )
    )

    # -- writing ---------------------------------------------------------------

    def register(self, path: str, session_id: str, tenant_id: str) -> None:
        """Tie an actor path to a session, so supervision events update its status."""
        self._paths[path] = session_id
        if session_id not in self._current:
            self.set(session_id, tenant_id, SessionStatus.STOPPED)

    def set(self, session_id: str, tenant_id: str, status: SessionStatus, reason: str = "", **detail) -> SessionInfo:
        """Record a status change; subscribers see it now, the store within ``debounce``.

        The account's ``jid`` is identity, kept across changes; QR and pairing
        codes, like ``until``, belong to the change that carries them.
        """
        previous = self._current.get(session_id)
        if previous is not None and "jid" not in detail:
            detail["jid"] = previous.jid
        info = SessionInfo(session_id, tenant_id, status, reason, self.wall_clock(trio.current_time()), **detail)
        if previous is not None and attrs.evolve(previous, since=info.since) == info:
            return previous  # nothing changed: no event, no write
        self._current[session_id] = info
        self._dirty[session_id] = info
        self._dirty_event.set()
        self._stats["updates"] += 1
        self._publish(info)
        return info

    def forget(self, session_id: str) -> None:
        """Drop a deleted session from the board (its row is the store's business)."""
        self._current.pop(session_id, None)
        self._dirty.pop(session_id, None)
        for path, sid in list(self._paths.items()):
            if sid == session_id:
                del self._paths[path]

    def release(self, session_id: str, reason: str) -> None:
        """This node no longer runs the session (another node owns it now, or will): tell the
        subscribers it is ``disconnected`` here (its outbox sender stops), then forget it. Nothing
        is written: the row belongs to the new owner."""
        current = self._current.get(session_id)
        if current is None:
            return
        self._publish(SessionInfo(session_id, current.tenant_id, SessionStatus.DISCONNECTED, reason,
                                  self.wall_clock(trio.current_time()), jid=current.jid))
        self.forget(session_id)

    # -- reading ---------------------------------------------------------------

    def get(self, session_id: str) -> SessionInfo | None:
        return self._current.get(session_id)

    def all(self) -> tuple[SessionInfo, ...]:
        return tuple(self._current.values())

    def counts(self) -> dict[str, int]:
        """Sessions per status (for metrics)."""
        counts = dict.fromkeys((s.value for s in SessionStatus), 0)
        for info in self._current.values():
            counts[info.status.value] += 1
        return counts

    def subscribe(self, buffer: int = SUBSCRIBER_BUFFER) -> trio.MemoryReceiveChannel:
        """A channel of every change from now on; closed if the reader falls ``buffer`` behind."""
        send, receive = trio.open_memory_channel[SessionInfo](buffer)
        self._subscribers.append(send)
        return receive

    def statistics(self) -> BoardStatistics:
        return BoardStatistics(**self._stats)

    # -- the board's own tasks -------------------------------------------------

    async def run(self, system: ActorSystem | None = None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Flush debounced writes; mirror supervision events of session paths. Until cancelled.

        On cancellation the pending changes are flushed once more (shielded, 5 s
        at most) so a graceful shutdown loses no status.
        """
        async with trio.open_nursery() as nursery:
            if system is not None:
                nursery.start_soon(self._mirror_supervision, system)
            task_status.started()
            try:
                while True:
                    await self._dirty_event.wait()
                    await trio.sleep(self.debounce)
                    await self.flush()
            finally:
                with trio.move_on_after(5.0) as scope:
                    scope.shield = True
                    await self.flush()

    async def flush(self) -> None:
        """Write every pending change now (one ``persist`` call). Failed writes stay pending."""
        self._dirty_event = trio.Event()
        if not self._dirty or self.persist is None:
            self._dirty.clear()
            return
        batch, self._dirty = self._dirty, {}
        try:
            await self.persist(tuple(batch.values()))
        except Exception:
            _LOG.exception("status write of %d sessions failed; will retry", len(batch))
            self._stats["write_errors"] += 1
            for session_id, info in batch.items():
                self._dirty.setdefault(session_id, info)
            self._dirty_event.set()
            return
        self._stats["writes"] += 1
        self._stats["rows_written"] += len(batch)

    async def _mirror_supervision(self, system: ActorSystem) -> None:
        with system.events() as events:
            async for event in events:
                session_id = self._paths.get(event.path)
                current = self._current.get(session_id) if session_id else None
                if current is None or current.status in TERMINAL or current.status is SessionStatus.BANNED:
                    continue
                match event.kind:
                    case EventKind.RESTART_SCHEDULED:
                        until = self.wall_clock(event.at + (event.delay or 0.0))
                        self.set(session_id, current.tenant_id, SessionStatus.BACKOFF, event.reason, until=until)
                    case EventKind.SUSPENDED:
                        until = None
                        reopen = system.tree().find(event.path)
                        if reopen is not None and reopen.backoff_until is not None and math.isfinite(reopen.backoff_until):
                            until = self.wall_clock(reopen.backoff_until)
                        self.set(session_id, current.tenant_id, SessionStatus.FAILED, "circuit breaker open", until=until)

    def _publish(self, info: SessionInfo) -> None:
        kept = []
        for send in self._subscribers:
            try:
                send.send_nowait(info)
            except trio.WouldBlock:
                send.close()
                self._stats["dropped_subscribers"] += 1
                continue
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            self._stats["published"] += 1
            kept.append(send)
        self._subscribers = kept
