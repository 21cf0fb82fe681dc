"""Sessions of a tenant: create, list, get, connect (QR or pairing code), QR image, logout, restart,
delete, status history.

Every change goes through the session manager (``/services/sessions``) by ``ask``;
its :class:`~actors.node.Refused` replies become 4xx answers. ``connect`` starts the
session and waits on the board for the first thing a human can act on (a QR code, a
pairing code) or ``connected``.

Several nodes: operations that need the session's live actor are forwarded to the node
that runs it (``_forward``); live statuses come from the cluster-wide view (this node's
board for what it runs, the owners' heartbeats for the rest), never from a row a dead
node left behind.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import segno
import trio
from pydantic import Field
from quart import Blueprint, Response

from actors.node import (
    RESTORE,
    CreateSession,
    DeleteSession,
    LogoutSession,
    Refused,
    RestartSession,
    StartSession,
)
from actors.sessions import TERMINAL, PairPhone, RequestFailed, SessionInfo, SessionStatus
from supervisor import ActorFailed, ActorStopped, AskTimeout, ChildNotFound

from ._audit import audited
from ._audit import record as record_audit
from ._auth import Principal
from ._errors import Conflict, NotFound, Unavailable
from ._forward import forward_to_owner
from ._routing import Auth, endpoint, path_param, state
from ._lifecycle import PurgeQuery
from ._tenants import tenant_or_404
from ._validate import Body, Identifier, Phone, Query, Text

bp = Blueprint("sessions", __name__)

path_param("session_id", Identifier)

MANAGER_TIMEOUT = 65.0
"""A manager request may wait for a start or a graceful stop (the runtime's control timeout is 60 s)."""

CONNECT_TIMEOUT = 20.0
"""Default wait for a QR code, a pairing code or ``connected`` after a connect request."""

MAX_CONNECT_TIMEOUT = 120.0
"""Longest wait a caller may ask for: an HTTP request should not outlive a proxy's timeout."""

SHOWN = frozenset({SessionStatus.QR, SessionStatus.PAIRING, SessionStatus.CONNECTED})
"""Statuses ``connect`` returns on: something to scan, a code to type, or nothing left to do."""

ENDED = TERMINAL | {SessionStatus.BANNED, SessionStatus.FAILED}
"""Statuses that end a connect wait early: the session will not show a code by itself."""

QR_FORMATS = ("png", "svg", "text")


class SessionBody(Body):
    id: Identifier
    name: Text
    allow_groups: bool = False


class ConnectBody(Body):
    phone: Annotated[Phone, Field(description="pair with a code sent to this number instead of a QR code")] = None
    timeout: Annotated[float, Field(ge=0.1, le=MAX_CONNECT_TIMEOUT)] = CONNECT_TIMEOUT


class QrQuery(Query):
    format: Literal[QR_FORMATS] = "png"


async def ask_manager(message: Any) -> Any:
    """Ask the session manager; ``Refused`` becomes the matching ApiError."""
    try:
        reply = await state().node.manager.ask(message, timeout=MANAGER_TIMEOUT)
    except (AskTimeout, ActorStopped, ActorFailed, ChildNotFound) as error:
        raise Unavailable(f"the session manager did not answer: {type(error).__name__}") from None
    if isinstance(reply, Refused):
        error = {"not_found": NotFound, "conflict": Conflict}.get(reply.code, Conflict)
        raise error(reply.message, reply.field)
    return reply


def _target(tenant_id: str, session_id: str) -> str:
    """Audit target: the session's actor path."""
    return f"/tenants/{tenant_id}/sessions/{session_id}"


async def session_or_404(tenant_id: str, session_id: str):
    """The session's record; another tenant's (or a deleted) session is 404."""
    record = await state().node.store.get_session(session_id)
    if record is None or record.tenant_id != tenant_id or record.status == "deleted":
        raise NotFound(f"no session {session_id!r}", "session_id")
    return record


def describe(record: Any) -> dict:
    """A session's row with its live status (see :func:`live_status`)."""
    return {"id": record.id, "tenant_id": record.tenant_id, "name": record.name,
            "allow_groups": record.allow_groups, "created_at": record.created_at, **_public(live_status(record))}


def live_status(record: Any) -> dict:
    """The session's status from the cluster-wide view: this node's board when it runs the session,
    else what its runner's heartbeat says, else what its run here ended with, else the row — where a
    session that should run but that no live node runs yet is ``starting`` (placement starts it)."""
    node = state().node
    info = node.board.get(record.id)
    if record.id in node.local and info is not None:
        return info.to_dict()
    remote = node.membership.remote_status(record.id)
    if remote is not None:
        return remote
    if info is not None:
        return info.to_dict()
    if record.status in RESTORE:
        return {"status": SessionStatus.STARTING.value, "reason": "no live node runs it yet; placement starts it"}
    return {"status": record.status, "reason": record.reason}


def _public(info: dict) -> dict:
    live = {k: v for k, v in info.items() if k not in ("session_id", "tenant_id")}
    live["status"] = str(live["status"])
    return live


@endpoint(bp, "POST", "/tenants/{tenant_id}/sessions",
          summary="Create a session (stopped until connect); an existing id is a 409",
          auth=Auth.TENANT_ADMIN, body=SessionBody, status=201)
async def create_session(who: Principal, tenant_id: str, body: SessionBody):
    await tenant_or_404(tenant_id)
    record = await audited(who, "create_session", _target(tenant_id, body.id),
                           _create(tenant_id, body.id, body.name, body.allow_groups))
    return describe(record)


async def _create(tenant_id: str, session_id: str, name: str, allow_groups: bool) -> Any:
    """Create through the manager; an existing session of the tenant is a 409, never renamed in place."""
    existing = await state().node.store.get_session(session_id)
    if existing is not None and existing.tenant_id == tenant_id and existing.status != "deleted":
        info = state().node.board.get(session_id)
        status = existing.status if info is None else str(info.status)
        raise Conflict(f"session {session_id!r} already exists (name {existing.name!r}, status {status}); "
                       f"choose another id, or DELETE it first", "id")
    return await ask_manager(CreateSession(tenant_id, session_id, name, allow_groups))


@endpoint(bp, "GET", "/tenants/{tenant_id}/sessions", summary="List the tenant's sessions", auth=Auth.TENANT)
async def list_sessions(who: Principal, tenant_id: str):
    await tenant_or_404(tenant_id)
    records = await state().node.store.list_sessions(tenant_id)
    return [describe(r) for r in records if r.status != "deleted"]


@endpoint(bp, "GET", "/tenants/{tenant_id}/sessions/{session_id}", summary="Get a session and its live status",
          auth=Auth.TENANT)
async def get_session(who: Principal, tenant_id: str, session_id: str):
    return describe(await session_or_404(tenant_id, session_id))


@endpoint(bp, "POST", "/tenants/{tenant_id}/sessions/{session_id}/connect",
          summary="Start the session; answer its QR code, a pairing code (given a phone) or connected",
          auth=Auth.TENANT_ADMIN, body=ConnectBody)
async def connect_session(who: Principal, tenant_id: str, session_id: str, body: ConnectBody):
    number_, timeout = None if body.phone is None else body.phone.lstrip("+"), body.timeout
    await session_or_404(tenant_id, session_id)
    if (forwarded := await forward_to_owner(session_id)) is not None:
        return forwarded
    await audited(who, "connect_session", _target(tenant_id, session_id), ask_manager(StartSession(session_id)))
    info = await _wait_shown(session_id, timeout)
    if number_ is not None and info.status is SessionStatus.QR:
        info = await _pair(tenant_id, session_id, number_, timeout)
    return {"session_id": session_id, **_public(info.to_dict())}


async def _wait_shown(session_id: str, timeout: float) -> SessionInfo:
    """The session's status once it shows a code or connected, or whatever it is at ``timeout``."""
    board = state().node.board
    changes = board.subscribe()
    with changes, trio.move_on_after(timeout):
        info = board.get(session_id)
        while info is None or (info.status not in SHOWN and info.status not in ENDED):
            change = await changes.receive()
            if change.session_id == session_id:
                info = change
    info = board.get(session_id)
    if info is None:
        raise NotFound(f"no session {session_id!r}", "session_id")
    return info


async def _pair(tenant_id: str, session_id: str, number_: str, timeout: float) -> SessionInfo:
    ref = state().node.system.ref(_target(tenant_id, session_id))
    try:
        reply = await ref.ask(PairPhone(number_), timeout=timeout)
    except (AskTimeout, ActorStopped, ActorFailed) as error:
        raise Unavailable(f"the session did not answer the pairing request: {type(error).__name__}") from None
    if isinstance(reply, RequestFailed):
        raise Conflict(f"pairing refused: {reply.message}", "phone")
    current = state().node.board.get(session_id)
    if current is not None and current.pairing_code:
        return current
    return SessionInfo(session_id, tenant_id, SessionStatus.PAIRING, "pairing code requested",
                       pairing_code=str(reply))


@endpoint(bp, "GET", "/tenants/{tenant_id}/sessions/{session_id}/qr",
          summary="The current QR code as PNG, SVG or terminal text",
          auth=Auth.TENANT, query=QrQuery, produces=("image/png", "image/svg+xml", "text/plain"))
async def session_qr(who: Principal, tenant_id: str, session_id: str, query: QrQuery):
    fmt = query.format
    await session_or_404(tenant_id, session_id)
    if (forwarded := await forward_to_owner(session_id)) is not None:
        return forwarded
    info = state().node.board.get(session_id)
    if info is None or not info.qr:
        status = "unknown" if info is None else info.status.value
        raise Conflict(f"session {session_id!r} shows no QR code (status {status}); POST .../connect first",
                       "session_id")
    return qr_response(info.qr, fmt)


def qr_response(code: str, fmt: str) -> Response:
    """Render a QR payload: PNG (scale 8), SVG, or text for a terminal."""
    qr = segno.make(code, error="m")
    buffer = io.BytesIO()
    if fmt == "text":
        text_buffer = io.StringIO()
        qr.terminal(out=text_buffer, compact=True)
        return Response(text_buffer.getvalue(), mimetype="text/plain")
    if fmt == "svg":
        qr.save(buffer, kind="svg", scale=8, border=2, omitsize=True)  # a viewBox: scales to its box
    else:
        qr.save(buffer, kind="png", scale=8, border=2)
    return Response(buffer.getvalue(), mimetype="image/png" if fmt == "png" else "image/svg+xml")


@endpoint(bp, "POST", "/tenants/{tenant_id}/sessions/{session_id}/logout",
          summary="Log the device out (credentials wiped)", auth=Auth.TENANT_ADMIN)
async def logout_session(who: Principal, tenant_id: str, session_id: str):
    await session_or_404(tenant_id, session_id)
    if (forwarded := await forward_to_owner(session_id)) is not None:
        return forwarded
    actor = state().node.system.tree().find(_target(tenant_id, session_id))
    if actor is None or actor.state != "running":
        # Logging out needs the live connection; the manager would ask a stopped actor.
        raise Conflict(f"session {session_id!r} is not running; connect it first", "session_id")
    reply = await audited(who, "logout_session", _target(tenant_id, session_id), ask_manager(LogoutSession(session_id)))
    if isinstance(reply, RequestFailed):
        raise Conflict(f"logout failed: {reply.message}", "session_id")
    return {"session_id": session_id, "logged_out": True}


@endpoint(bp, "POST", "/tenants/{tenant_id}/sessions/{session_id}/restart",
          summary="Stop and start the session (no logout)", auth=Auth.TENANT_ADMIN)
async def restart_session(who: Principal, tenant_id: str, session_id: str):
    await session_or_404(tenant_id, session_id)
    if (forwarded := await forward_to_owner(session_id)) is not None:
        return forwarded
    info = await audited(who, "restart_session", _target(tenant_id, session_id),
                         ask_manager(RestartSession(session_id)))
    return {"session_id": session_id, **_public(info.to_dict())}


@endpoint(bp, "DELETE", "/tenants/{tenant_id}/sessions/{session_id}",
          summary="Delete the session (logs out a connected one first); its data is purged after "
          "retention.purge_grace, or at once with ?purge=now", auth=Auth.TENANT_ADMIN, query=PurgeQuery)
async def delete_session(who: Principal, tenant_id: str, session_id: str, query: PurgeQuery):
    await tenant_or_404(tenant_id)
    store = state().node.store
    record = await store.get_session(session_id)
    if query.purge is None or record is None or record.tenant_id != tenant_id or record.status != "deleted":
        await session_or_404(tenant_id, session_id)
        if (forwarded := await forward_to_owner(session_id)) is not None:
            return forwarded
        await audited(who, "delete_session", _target(tenant_id, session_id), ask_manager(DeleteSession(session_id)))
        state().history.forget(session_id)
        # Evolution's event for a removed instance: the tenant's webhooks, and a LOW admin notification.
        state().node.webhooks.emit(tenant_id, "remove.instance",
                                   {"session_id": session_id, "reason": "deleted by request"})
    if query.purge is None:
        return None
    if (record := await store.get_session(session_id)) is None:  # purged meanwhile
        raise NotFound(f"no session {session_id!r}", "session_id")
    report = await state().node.sweeper.purge_session(record)
    await record_audit(who, "purge_session", f"/tenants/{tenant_id}", "ok",
                       f"{session_id}: {report.rows} rows, {report.files} files")
    return report


@endpoint(bp, "GET", "/tenants/{tenant_id}/sessions/{session_id}/status-history",
          summary="Status changes of the session since this node started (oldest first)", auth=Auth.TENANT)
async def status_history(who: Principal, tenant_id: str, session_id: str):
    await session_or_404(tenant_id, session_id)
    return [_public(info.to_dict()) for info in state().history.of(session_id)]
