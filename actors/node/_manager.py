"""The session manager (``/services/sessions``): the life of sessions, as messages.

It is the one place that creates, starts, stops, restarts, logs out and deletes
sessions: it keeps the store's ``sessions`` rows, the tenants' subtrees and the
session actors in agreement. The API talks to it with ``ask``; every reply is a
value (a record, a status, or :class:`Refused` naming the problem), never an
exception, so a bad request cannot crash it.

On start it restores the sessions that were live when the node stopped: every
session whose last persisted status says it was connected or trying to be.
Status changes are persisted debounced, but start and stop requests are written
through at once, so even a ``kill -9`` right after a request restores correctly. Their
connects then go through the node's connect limiter and upstream gate, so a
restart of a node with thousands of sessions comes back as a ramp, not a
``Promise.all`` stampede.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from actors.sessions import Logout, SessionStatus, session_spec, tenant_spec
from supervisor import (
    Actor,
    ActorStopped,
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    StartFailed,
)

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

DELETED = "deleted"
"""Status stored for a deleted session: the row stays for its history, the session never restores."""


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
class RestoreSessions:
    """Start every session that was live when the node stopped (sent once at boot)."""


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

    async def on_start(self) -> None:
        if self.node.settings.sessions.restore_on_boot:
            self.ctx.ref.tell(RestoreSessions())

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
            case RestoreSessions():
                return await self._restore()
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

    async def _stop(self, session_id: str) -> Any:
        record = await self._live_record(session_id)
        if isinstance(record, Refused):
            return record
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
        # The row stays (its tickets and messages are history); it is marked so it never restores.
        await self.node.store.set_session_status(session_id, DELETED, "deleted by request")
        self.node.webhooks.emit(record.tenant_id, "remove.instance", {"session_id": session_id})
        return None

    async def _restore(self) -> int:
        restored = 0
        for record in await self.node.store.list_sessions():
            self.node.board.register(self._path(record.tenant_id, record.id), record.id, record.tenant_id)
            if record.status in RESTORE:  # already persisted as live: launch from the row we have
                result = await self._launch(record)
                restored += not isinstance(result, Refused)
        _LOG.info("restored %d sessions", restored)
        return restored

    # -- helpers ------------------------------------------------------------------

    async def _live_record(self, session_id: str) -> Any:
        record = await self.node.store.get_session(session_id)
        if record is None or record.status == DELETED:
            return Refused("not_found", f"no session {session_id!r}", "session_id")
        return record

    async def _ensure_tenant(self, tenant_id: str) -> None:
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

