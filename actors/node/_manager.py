"""The session manager (``/services/sessions``): the life of sessions, as messages.

It is the one place that creates, starts, stops, restarts, logs out and deletes
sessions: it keeps the store's ``sessions`` rows, the tenants' subtrees and the
session actors in agreement. The API talks to it with ``ask``; every reply is a
value (a record, a status, or :class:`Refused` naming the problem), never an
exception, so a bad request cannot crash it.

It also reconciles (DESIGN §11): the sessions that should run are those whose
persisted status says they were connected or trying to be (:data:`RESTORE`); each
has one owner among the live members (:func:`actors.cluster.place`). A
:class:`Reconcile` pass starts what this node should own and does not run, and hands
off what another node should own (its actor stops without recording anything; the
lease is released at once). A session whose lease another node still holds is not
started until it is free (no actor waits for a lease it cannot have). Passes run
once the membership has settled after boot (that is the restore), at every
membership change, and every :data:`RECONCILE_INTERVAL` (:data:`HANDOFF_PACE` while it hands
off, :data:`LEASE_PACE` while some wait for a lease) — so a dead node's sessions are claimed by the
survivors when its leases lapse, and a drained node's as each is handed over. With the
memory bus the node is a cluster of one and owns everything. Connects go through the
node's connect limiter and upstream gate, so a restart or a failover of thousands of
sessions comes back as a ramp, not a ``Promise.all`` stampede.

Before anything else it replays this node's inbound journal into the store, every session's,
wherever it runs now (:mod:`actors.node._recovery`): what a ``kill -9`` left there was receipted to
WhatsApp and exists nowhere else.

Start and stop requests are written through at once (status changes are persisted
debounced), so even a ``kill -9`` right after a request restores correctly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors.cluster import place, plan
from actors.bus import BusUnavailable
from actors.sessions import HandOver, Logout, SessionStatus, lease_resource, session_spec, tenant_spec
from actors.store import StoreClosed, StoreUnavailable
from supervisor import (
    Actor,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    StartFailed,
)

from ._recovery import replay_journal

if TYPE_CHECKING:
    from ._node import Node

_LOG = logging.getLogger("zapvisor.sessions")

RESTORE = frozenset(
    {
        SessionStatus.QUEUED,
        SessionStatus.STARTING,
        SessionStatus.CONNECTING,
        SessionStatus.QR,
        SessionStatus.PAIRING,
        SessionStatus.CONNECTED,
        SessionStatus.DEGRADED,
        SessionStatus.DISCONNECTED,
        SessionStatus.BACKOFF,
        SessionStatus.FAILED,
    }
)
"""Persisted statuses of sessions that were live (or trying) when the node stopped."""

RECONCILE_INTERVAL = 2.0
"""Seconds between reconcile passes without a membership change: how soon a session whose row
another node changed (a start request there) or whose owner's lease lapsed is picked up."""

RECONCILE_TIMEOUT = 300.0
"""A pass starts a node's worth of sessions (each start is quick; connecting happens later)."""

LEASE_LOOKUPS = 512
"""Lease holders looked up at once in a pass: the bus sends commands issued together to Redis in
shared pipelines over a bounded set of connections, so a drain's or a failover's worth of sessions
costs a round trip or two (16 at a time, a pass over 500 sessions waited for 32 of them in turn)."""

LAUNCHES_AT_ONCE = 64
"""Sessions a pass starts at once: their start requests queue at their tenant's supervisor back to
back instead of one after another's answer (a pass taking over 400 drained sessions spent seconds
launching them one by one while they could have been connecting)."""

HANDOFF_PACE = 0.5
"""Seconds between passes while hand-offs are pending (a join moves one batch per pass)."""

LEASE_PACE = 0.25
"""Seconds between passes while sessions this node should own wait for another node's lease: a
drain releases them one by one as each is handed over (each pass starts those released since the
last: the sooner, the sooner the connect limiter's ramp begins), a dead node's lapse at their TTL."""

HANDOVER_TIMEOUT = 10.0
"""Seconds a session handed over may take to close its connection and store what it delivered;
then it is stopped anyway, and this node stores what its journal still holds for it (``_recovery``)."""

HANDOVERS_AT_ONCE = 100
"""Sessions closing their connections at once in a drain."""

DELETED = "deleted"
"""Status stored for a deleted session: it never restores; its data (row included) is purged after
``retention.purge_grace`` (see actors.lifecycle)."""


@attrs.frozen
class CreateSession:
    tenant_id: str
    session_id: str
    name: str
    allow_groups: bool = False


@attrs.frozen
class StartSession:
    """Start the session's actor (it connects: QR, pairing or straight to connected)."""

    session_id: str


@attrs.frozen
class StopSession:
    """Stop without logging out; the session stays stopped across node restarts."""

    session_id: str


@attrs.frozen
class RestartSession:
    session_id: str


@attrs.frozen
class LogoutSession:
    """Unlink the device (credentials wiped); the session ends ``logged_out``."""

    session_id: str


@attrs.frozen
class DeleteSession:
    """Stop the session and forget it: actor, status and its credentials (by logging out)."""

    session_id: str


@attrs.frozen
class ListSessions:
    tenant_id: str | None = None


@attrs.frozen
class Reconcile:
    """One reconcile pass (see the module docstring); reply: the :class:`~actors.cluster.Plan` applied."""


@attrs.frozen
class Drain:
    """Stop every session this node runs, without logging out, releasing their leases now
    (the node is leaving: it has announced it, so nobody places sessions here any more)."""


@attrs.frozen
class Refused:
    """Why a request was not carried out: ``code`` is not_found | conflict | not_running."""

    code: str
    message: str
    field: str | None = None


class SessionManager(Actor):
    """See the module docstring."""

    def __init__(self, node: "Node") -> None:
        self.node = node
        self._restored = False
        self._waiting = 0  # sessions the last pass left for another node to release: look again soon

    async def on_start(self) -> None:
        self.ctx.nursery.start_soon(self._booting)

    async def _booting(self) -> None:
        """Replay this node's inbound journal into the store (every session's, wherever it runs
        now: :mod:`actors.node._recovery`), then reconcile (unless ``restore_on_boot`` is off)."""
        await self._replay_journal()
        if self.node.settings.sessions.restore_on_boot:
            await self._reconciling()

    async def _replay_journal(self) -> None:
        """Store what this node's inbound journal holds for the sessions it does not run
        (:mod:`actors.node._recovery`): at boot, after a pass that handed off a session that did not
        answer its hand-over, after a drain."""
        if self.node.settings.sessions.driver != "simulated":
            return
        try:
            await replay_journal(Path(self.node.settings.node.data_dir) / "journal", self.node.store,
                                 self.node.deps.inbound, frozenset(self.node.local))
        except OSError:  # unreadable: the sessions' own drivers report it too; the node runs on
            _LOG.exception("journal replay failed")

    async def receive(self, message: Any) -> Any:
        match message:
            case CreateSession(tenant_id, session_id, name, allow_groups):
                return await self._create(tenant_id, session_id, name, allow_groups)
            case StartSession(session_id):
                return await self._start(session_id)
            case StopSession(session_id):
                return await self._stop(session_id)
            case RestartSession(session_id):
                refused = await self._stop(session_id)
                return refused if isinstance(refused, Refused) else await self._start(session_id)
            case LogoutSession(session_id):
                return await self._logout(session_id)
            case DeleteSession(session_id):
                return await self._delete(session_id)
            case ListSessions(tenant_id):
                return tuple(i for i in self.node.board.all() if tenant_id is None or i.tenant_id == tenant_id)
            case Reconcile():
                return await self._reconcile()
            case Drain():
                return await self._drain()
        raise TypeError(f"session manager got an unknown message {message!r}")

    # -- requests ---------------------------------------------------------------

    async def _create(self, tenant_id: str, session_id: str, name: str, allow_groups: bool) -> Any:
        store = self.node.store
        if await store.get_tenant(tenant_id) is None:
            return Refused("not_found", f"no tenant {tenant_id!r}", "tenant_id")
        existing = await store.get_session(session_id)
        if existing is not None and (existing.tenant_id != tenant_id or existing.status == DELETED):
            return Refused("conflict", f"session id {session_id!r} is taken", "session_id")
        record = await store.upsert_session(session_id, tenant_id, name, allow_groups=allow_groups)
        self.node.board.register(self._path(tenant_id, session_id), session_id, tenant_id)
        return record

    async def _start(self, session_id: str) -> Any:
        record = await self._live_record(session_id)
        if isinstance(record, Refused):
            return record
        # Written through, not debounced: a crash right after this request must still restore it.
        await self.node.store.set_session_status(session_id, SessionStatus.STARTING.value, "start requested")
        return await self._launch(record)

    async def _launch(self, record: Any) -> Any:
        """Start the session actor of ``record`` (idempotent); its status, or Refused."""
        await self._ensure_tenant(record.tenant_id)
        sessions = self._tenant_sessions(record.tenant_id)
        if isinstance(sessions, Refused):
            return sessions
        self.node.local.add(record.id)
        spec = session_spec(record.id, record.tenant_id, self.node.deps,
                            backoff=self.node.session_backoff, breaker=self.node.session_breaker)
        try:
            await sessions.start_child(spec)
        except AlreadyStarted:
            pass  # already running: starting is idempotent
        except AlreadyPresent:
            try:
                await sessions.restart_child(record.id)
            except (ChildRunning, ChildRestarting):
                pass  # it is coming back by itself
        except StartFailed as exc:
            return Refused("conflict", str(exc), None)
        except ActorStopped:  # the tenant's subtree stopped meanwhile (an operator's stop)
            return self._subtree_stopped(record.tenant_id)
        return self.node.board.get(record.id)

    async def _launch_all(self, records: list[Any]) -> None:
        """:meth:`_launch` each of ``records``, :data:`LAUNCHES_AT_ONCE` at a time (each tenant's
        subtree is started once: the first of its sessions starts it, the others find it)."""
        limiter = trio.CapacityLimiter(LAUNCHES_AT_ONCE)

        async def launch(record: Any) -> None:
            async with limiter:
                await self._launch(record)

        for tenant_id in {record.tenant_id for record in records}:
            await self._ensure_tenant(tenant_id)
        async with trio.open_nursery() as nursery:
            for record in records:
                nursery.start_soon(launch, record)

    async def _stop(self, session_id: str) -> Any:
        record = await self._live_record(session_id)
        if isinstance(record, Refused):
            return record
        self.node.local.discard(session_id)
        try:
            sessions = self.ctx.system.supervisor(f"/tenants/{record.tenant_id}/sessions")
            await sessions.terminate_child(session_id)
        except (ChildNotFound, ActorStopped):
            pass  # never started on this node, or its tenant's subtree is stopped (and it with it)
        info = self.node.board.get(session_id)
        if info is None or info.status is not SessionStatus.STOPPED:
            self.node.board.register(self._path(record.tenant_id, session_id), session_id, record.tenant_id)
            info = self.node.board.set(session_id, record.tenant_id, SessionStatus.STOPPED, "stopped by request")
        # Written through as well: a stopped session must stay stopped after a crash.
        await self.node.store.set_session_status(session_id, SessionStatus.STOPPED.value, "stopped by request")
        return info

    async def _logout(self, session_id: str) -> Any:
        record = await self._live_record(session_id)
        if isinstance(record, Refused):
            return record
        try:
            ref = self.ctx.system.ref(self._path(record.tenant_id, session_id))
            return await ref.ask(Logout(), timeout=30.0)
        except (ChildNotFound, ActorStopped):  # never started here, or not running right now
            return Refused("not_running", f"session {session_id!r} is not connected", "session_id")

    async def _delete(self, session_id: str) -> Any:
        record = await self._live_record(session_id)
        if isinstance(record, Refused):
            return record
        info = self.node.board.get(session_id)
        if info is not None and info.status is SessionStatus.CONNECTED:
            await self._logout(session_id)  # wipes the credentials; delete must not leave them behind
        await self._stop(session_id)
        try:
            await self.ctx.system.supervisor(f"/tenants/{record.tenant_id}/sessions").delete_child(session_id)
        except (ChildNotFound, ActorStopped):
            pass  # never started here, or its tenant's subtree is stopped (and with it, the session)
        self.node.board.forget(session_id)
        self._forget_deleted(session_id)
        # Marked (it never restores) with the time of deletion: the janitor purges its data, its
        # row included, retention.purge_grace later (see actors.lifecycle).
        await self.node.store.mark_session_deleted(session_id, "deleted by request")
        self.node.webhooks.emit(record.tenant_id, "remove.instance", {"session_id": session_id})
        return None

    async def _reconciling(self) -> None:
        """Ask for a pass once the membership has settled, then at every change or interval."""
        membership = self.node.membership
        await membership.settled.wait()
        while True:
            done = await self.ctx.ref.ask(Reconcile(), timeout=RECONCILE_TIMEOUT)
            pace = LEASE_PACE if self._waiting else HANDOFF_PACE if done.hand_off else RECONCILE_INTERVAL
            with trio.move_on_after(pace):
                await membership.wait_changed()

    async def _reconcile(self) -> Any:
        membership, local = self.node.membership, self.node.local
        self._waiting = 0
        if membership.me.draining:
            return plan(membership.me.node_id, (), {}, ())
        try:
            records = {r.id: r for r in await self.node.store.list_sessions()}
        except (StoreUnavailable, StoreClosed) as exc:  # the next pass retries; what runs keeps running
            _LOG.warning("reconcile skipped: %s", exc)
            return plan(membership.me.node_id, (), {}, ())
        wanted = [sid for sid, r in records.items() if r.status in RESTORE]
        changes = plan(membership.me.node_id, wanted, place(wanted, membership.members()), local)
        started = await self._free(changes.start)
        self._waiting = len(changes.start) - len(started)
        await self._launch_all([records[session_id] for session_id in started])
        answered = True
        for session_id in changes.hand_off:
            answered &= await self._hand_off(records[session_id])
        for session_id in changes.forget:  # deleted through another node: its actor stops here
            if (record := records.get(session_id)) is not None and record.status == DELETED:
                answered &= await self._hand_off(record)
                self._forget_deleted(session_id)
        if not answered:  # what those delivered may still be in this node's journal only
            await self._replay_journal()
        self.node.local.difference_update(changes.forget)  # ended here (logged out, stopped): kept as is
        if not self._restored:  # the first pass after boot is the restore
            self._restored = True
            _LOG.info("restored %d sessions", len(started))
        elif started or changes.hand_off:
            _LOG.info("reconciled: %d started (%d more wait for their lease), %d handed off, %d running here",
                      len(started), len(changes.start) - len(started), len(changes.hand_off), len(local))
        return changes

    async def _free(self, session_ids: tuple[str, ...]) -> list[str]:
        """The sessions among ``session_ids`` whose lease no other node holds: only those start
        here now. One another node still holds (it hands over, or its views differ from ours for
        a moment, or it died and its lease has not lapsed yet) is looked at again next pass —
        no actor waits here meanwhile. Unknown (bus unavailable) counts as held."""
        me, bus, free = self.node.membership.me.node_id, self.node.bus, []
        limiter = trio.CapacityLimiter(LEASE_LOOKUPS)

        async def check(session_id: str) -> None:
            async with limiter:
                try:
                    holder = await bus.lock_owner(lease_resource(session_id))
                except BusUnavailable:
                    return
            if holder in (None, me):
                free.append(session_id)

        async with trio.open_nursery() as nursery:
            for session_id in session_ids:
                nursery.start_soon(check, session_id)
        return sorted(free)

    async def _hand_off(self, record: Any) -> bool:
        """Hand the session over (:class:`~actors.sessions.HandOver`: its connection closed, what
        it delivered stored), then stop its actor here without recording a status (its lease is
        released as it stops); the board lets it go, so this node reports it from its owner from now on.
        Whether it answered (:meth:`_hand_over`): if not, the caller replays this node's journal."""
        self.node.local.discard(record.id)
        answered = await self._hand_over(record.tenant_id, record.id)
        sessions = self.ctx.system.supervisor(f"/tenants/{record.tenant_id}/sessions")
        try:
            await sessions.terminate_child(record.id)
            await sessions.delete_child(record.id)
        except ChildNotFound:
            pass
        self.node.board.release(record.id, "moved to another node")
        return answered

    def _forget_deleted(self, session_id: str) -> None:
        """What the node's services kept of a deleted session goes (:meth:`Flows.session_deleted`)."""
        if self.node.flows is not None:
            self.node.flows.session_deleted(self.ctx.system, session_id)

    async def _hand_over(self, tenant_id: str, session_id: str) -> bool:
        """Ask the session to close its connection and store what it delivered (bounded by
        HANDOVER_TIMEOUT). False when it did not answer: it timed out, or it is not running (stopped,
        failed: its last connection's messages were receipted, maybe not stored). What it delivered
        may then be in this node's journal only: the caller replays the journal once it is stopped."""
        try:
            await self.ctx.system.ref(self._path(tenant_id, session_id)).ask(HandOver(), timeout=HANDOVER_TIMEOUT)
        except AskTimeout as exc:
            _LOG.warning("session %s handed over without closing first: %s", session_id, exc)
            return False
        except (ChildNotFound, ActorStopped, ActorFailed) as exc:
            _LOG.info("session %s handed over without closing first: %s", session_id, exc)
            return False
        return True

    async def _drain(self) -> int:
        """Hand every session run here over (up to HANDOVERS_AT_ONCE closing at once): each
        releases its lease once what it delivered is stored, and leaves this node's heartbeat, so
        the others start it while the rest are still being handed over. Then stop them, each
        tenant's at once (a supervisor stops its sessions concurrently); returns how many."""
        drained = tuple(self.node.local)
        owners = {sid: info.tenant_id for sid in drained if (info := self.node.board.get(sid)) is not None}
        tenants = set(owners.values())
        limiter = trio.CapacityLimiter(HANDOVERS_AT_ONCE)

        async def hand_over(session_id: str, tenant_id: str) -> None:
            async with limiter:
                await self._hand_over(tenant_id, session_id)
            # its lease is released (HandOver): from now on it is the new owner's to report
            self.node.local.discard(session_id)
            self.node.board.release(session_id, "its node is draining")
            self.node.membership.beat_now()

        async with trio.open_nursery() as nursery:
            for session_id, tenant_id in owners.items():
                nursery.start_soon(hand_over, session_id, tenant_id)

        async def stop_tenant(tenant_id: str) -> None:
            try:
                await self.ctx.system.supervisor(f"/tenants/{tenant_id}").terminate_child("sessions")
            except ChildNotFound:
                pass

        async with trio.open_nursery() as nursery:
            for tenant_id in tenants:
                nursery.start_soon(stop_tenant, tenant_id)
        self.node.local.clear()
        for session_id in drained:
            self.node.board.release(session_id, "its node is draining")
        _LOG.info("drained %d sessions", len(drained))
        await self._replay_journal()  # what the sessions that did not answer their hand-over left there
        return len(drained)

    # -- helpers ------------------------------------------------------------------

    async def _live_record(self, session_id: str) -> Any:
        record = await self.node.store.get_session(session_id)
        if record is None or record.status == DELETED:
            return Refused("not_found", f"no session {session_id!r}", "session_id")
        return record

    async def _ensure_tenant(self, tenant_id: str) -> None:
        """Start the tenant's subtree unless it runs (a local look-up: a pass launching hundreds
        of sessions of one tenant asks ``/tenants`` nothing)."""
        if not isinstance(self._tenant_sessions(tenant_id), Refused):
            return
        try:
            await self.ctx.system.supervisor("/tenants").start_child(tenant_spec(tenant_id, self.node.limiter))
        except (AlreadyStarted, AlreadyPresent):
            pass  # there: running, or stopped by an operator (left so: see _tenant_sessions)
        except ActorStopped:
            pass  # /tenants itself is stopped by an operator: _tenant_sessions refuses

    def _tenant_sessions(self, tenant_id: str) -> Any:
        """The tenant's sessions supervisor, or Refused while an operator keeps its subtree stopped
        (``/tenants`` or ``/tenants/<id>``): a request never overrides that stop, nor crashes the manager."""
        try:
            return self.ctx.system.supervisor(f"/tenants/{tenant_id}/sessions")
        except ChildNotFound:
            return self._subtree_stopped(tenant_id)

    @staticmethod
    def _subtree_stopped(tenant_id: str) -> Refused:
        return Refused("conflict", f"tenant {tenant_id!r}'s actors are stopped: start /tenants/{tenant_id} "
                       "(or /tenants) first", "tenant_id")

    @staticmethod
    def _path(tenant_id: str, session_id: str) -> str:
        return f"/tenants/{tenant_id}/sessions/{session_id}"

