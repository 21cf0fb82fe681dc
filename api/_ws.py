"""The agents' websocket ``/ws``: authenticate, join rooms, receive events, send messages.

Connect with the token as ``Authorization: Bearer <JWT or admin token>`` or ``?token=<...>``
(browsers cannot set headers on a websocket). A bad token ends the connection at once with close
code 1008 and the reason. Then JSON text frames, one object each, ``op`` naming the request:

=========  ======================================================  ==================================
op         fields                                                   answer
=========  ======================================================  ==================================
join       ``room``; ``since`` (last seq seen), ``epoch`` optional  ``joined`` (+ missed events, or
                                                                    ``resync``)
leave      ``room``                                                 ``left``
ping       ``id`` optional                                          ``pong`` (same ``id``)
send       ``ticket_id``, ``text``, ``idempotency_key``;            ``sent`` (the outbox row), or
           ``quoted_message_id`` optional (a reply)                 ``error``
react      ``ticket_id``, ``message_id``, ``emoji`` ("" removes)    ``updated`` (the message), or
                                                                    ``error``
edit       ``ticket_id``, ``message_id``, ``text``                  ``updated``, or ``error``
delete     ``ticket_id``, ``message_id``                            ``updated``, or ``error``
=========  ======================================================  ==================================

``react``, ``edit`` and ``delete`` act on a message of the ticket like their REST endpoints
(:mod:`api._operations`: sent at once through the session, which must run on this node).

Events arrive as ``{"type": "message.created", "room", "seq", "payload", "at"}``; the hub may
also send ``lagged`` (you fell behind: resume your rooms with ``since``) and ``resync``.

Malformed input ends the connection and does nothing else: a binary frame or text that is not a
JSON object → close 1003 (unsupported data); a JSON object that is not a valid request (unknown
op, missing, mistyped, out-of-range or unknown field, a lone surrogate or a NUL in a string,
nesting deeper than the REST bodies may go, a room the token may not join) → close 1008 (policy
violation), the reason naming the field. Frames are declared as pydantic models like the REST
bodies (:mod:`api._validate`), with the same caps: ``text`` as a message text, ``idempotency_key``
as the ``Idempotency-Key`` header, ``ticket_id`` as a ticket id. A client too slow for its queue
→ close 1008 "too slow".

Each event is its own text message; a writer that wakes up behind several frames hands them to
Hypercorn in one transport write (:func:`_frames_sender`), which clients cannot tell apart.
Compression: Hypercorn (0.18, no setting) accepts permessage-deflate whenever the client offers it,
as browsers do; each frame is then compressed once per client (about 7 µs more per 300-byte frame
per client, and a zlib compressor of ~90 KB resident per connection, measured with wsproto on the
bench machine). Kept deliberately for now: remote agents' links get chat JSON several times
smaller. ``bench.fanout``'s clients offer no extension, so it compares uncompressed servers.

The app factory calls :func:`register_websocket` once; ``send`` goes to the node's outbox service
like ``POST /tenants/{t}/tickets/{id}/messages`` (:class:`NodeOutbox`), with the token's tenant.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, Protocol

import attrs
import trio
from hypercorn.protocol.events import Data
from hypercorn.protocol.ws_stream import WSStream
from pydantic import Field
from quart import websocket
from wsproto.events import TextMessage
from wsproto.utilities import LocalProtocolError

from actors.drivers import MessageKind
from actors.flows import message_payload
from actors.hub import Client, ClientClosed, Hub, HubError, InvalidRoom, RoomForbidden, control
from actors.outbox import Send

from ._errors import ApiError, BadRequest, Unauthorized
from ._operations import operate
from ._send import quote_of, send_target, submit
from ._validate import MAX_ID, Body, Id, Key, NotJson, Offset, Text, parse_json, text, validate


UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008

WRITE_BATCH = 64
"""Frames a writer hands the transport in one write at most (~20 KB of chat events): a burst
costs one write per client instead of one per frame, and a client stalled on its socket holds
at most this many frames besides its queue."""

CLOSE_GRACE = 5.0
"""Seconds a client the hub closed (too slow) may take to read its last frames before the
connection is cut: a client that stopped reading must not hold a handler forever."""

MAX_FRAME = 64 * 1024
"""Largest request frame in characters: requests are small commands (a message text fits)."""

MAX_ROOM = 200
"""Longest room name (``tenant:<id>``, ``ticket:<id>``... are far shorter)."""


class JoinFrame(Body):
    op: Literal["join"]
    room: text(MAX_ROOM)
    since: Offset = None
    epoch: text(MAX_ROOM) = None


class LeaveFrame(Body):
    op: Literal["leave"]
    room: text(MAX_ROOM)


class PingFrame(Body):
    op: Literal["ping"]
    id: text(MAX_ROOM) | Annotated[int, Field(ge=-MAX_ID, le=MAX_ID)] = None


class SendFrame(Body):
    op: Literal["send"]
    ticket_id: Id
    text: Text
    idempotency_key: Key
    quoted_message_id: Id = None


class ReactFrame(Body):
    op: Literal["react"]
    ticket_id: Id
    message_id: Id
    emoji: Annotated[str, Field(max_length=32)]


class EditFrame(Body):
    op: Literal["edit"]
    ticket_id: Id
    message_id: Id
    text: Text


class DeleteFrame(Body):
    op: Literal["delete"]
    ticket_id: Id
    message_id: Id


FRAMES: dict[str, type[Body]] = {"join": JoinFrame, "leave": LeaveFrame, "ping": PingFrame, "send": SendFrame,
                                 "react": ReactFrame, "edit": EditFrame, "delete": DeleteFrame}
"""The request declaration of each op."""


class Outbox(Protocol):
    """What ``send`` needs from the outbound flow (:class:`NodeOutbox` on a node).

    ``submit`` queues the message durably (idempotent per tenant + key) and returns a JSON-able
    description of the outbox row. Raises the REST errors (:mod:`api._errors`), answered as an
    ``error`` frame with their ``code``: NotFound for a ticket the tenant does not have, Conflict
    for a closed one, BadRequest naming the field the outbox refuses, Unavailable when the outbox
    cannot answer now.
    """

    async def submit(self, tenant_id: str, user: str, *, ticket_id: int, text: str, idempotency_key: str,
                     quoted_message_id: int | None = None) -> dict: ...

    async def operate(self, tenant_id: str, *, ticket_id: int, message_id: int, kind: MessageKind, text: str) -> dict:
        """React to, edit or delete a message (:func:`api._operations.operate`); the message as a
        ``message.updated`` payload. Raises the REST errors, answered as an ``error`` frame."""


@attrs.frozen
class NodeOutbox:
    """The node's outbox service, reached through the same checks as ``POST .../messages``
    (:mod:`api._send`): the tenant's ticket, not closed (a key accepted before the close still
    answers), gives the session and the contact to write to."""

    node: Any

    async def submit(self, tenant_id: str, user: str, *, ticket_id: int, text: str, idempotency_key: str,
                     quoted_message_id: int | None = None) -> dict:
        ticket, contact = await send_target(self.node.store, tenant_id, ticket_id, idempotency_key)
        quote = await quote_of(self.node.store, ticket_id, quoted_message_id)
        reply = await submit(self.node, Send(tenant_id, ticket.session_id, idempotency_key, contact.jid, text,
                                             ticket_id, quote=quote))
        item = reply.item
        return {"created": reply.created, "id": item.id, "status": str(item.status), "message_id": item.message_id}

    async def operate(self, tenant_id: str, *, ticket_id: int, message_id: int, kind: MessageKind, text: str) -> dict:
        return message_payload(await operate(self.node, tenant_id, ticket_id, message_id, kind, text))


class FrameRefused(ValueError):
    """A frame that ends the connection with ``code`` (1003/1008) and a reason naming the problem."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def register_websocket(app: Any, node: Any, *, outbox: Outbox | None = None) -> None:
    """Serve ``/ws`` on ``app`` with ``node.hub``; authenticate with the app's Authority
    (``app.extensions["zapvisor"].authority``) and report the client count to ``/metrics``.
    ``outbox`` defaults to the node's (:class:`NodeOutbox`)."""
    hub: Hub = node.hub
    outbox = outbox or NodeOutbox(node)
    api_state = app.extensions["zapvisor"]
    api_state.websocket_clients = lambda: hub.statistics().clients

    @app.websocket("/ws")
    async def agents_websocket() -> None:
        await websocket.accept()
        try:
            principal = api_state.authority.authenticate(_bearer())
        except Unauthorized as error:
            await websocket.close(POLICY_VIOLATION, _reason(error.message))
            return
        client = hub.connect(principal.tenant or "", str(principal.user or principal.name), principal.role)
        try:
            ending = await _serve(hub, client, outbox)
        finally:
            hub.disconnect(client)
        if ending is not None:
            with trio.move_on_after(CLOSE_GRACE):  # the peer may not be reading at all
                await websocket.close(ending[0], _reason(ending[1]))


def _bearer() -> str | None:
    header = websocket.headers.get("Authorization")
    if header:
        return header
    token = websocket.args.get("token")
    return f"Bearer {token}" if token else None


def _reason(text: str) -> str:
    """Close reasons must fit a control frame (123 bytes of UTF-8)."""
    return text.encode()[:123].decode(errors="ignore")


async def _serve(hub: Hub, client: Client, outbox: Outbox) -> tuple[int, str] | None:
    """Read requests and write frames until the peer leaves (returns None; usually by
    cancellation) or the connection must end: returns the close code and reason — a refused
    frame (1003/1008) or the hub closing a client that is too slow (1008)."""
    ending: list[tuple[int, str]] = []
    async with trio.open_nursery() as nursery:

        async def write() -> None:
            send = _frames_sender()
            try:
                while True:
                    await send(await client.receive_many(WRITE_BATCH))
            except ClientClosed as closed:
                ending.append((POLICY_VIOLATION, closed.reason))
                nursery.cancel_scope.cancel()

        async def cut_when_closed() -> None:
            await client.closed_event.wait()
            await trio.sleep(CLOSE_GRACE)
            ending.append((POLICY_VIOLATION, client.closed))
            nursery.cancel_scope.cancel()

        nursery.start_soon(write)
        nursery.start_soon(cut_when_closed)
        try:
            while True:
                await _handle(hub, client, outbox, _parse(await websocket.receive()))
        except FrameRefused as refused:
            ending.append((refused.code, refused.reason))
            nursery.cancel_scope.cancel()
    return ending[0] if ending else None


def _frames_sender() -> Callable[[list[str]], Awaitable[None]]:
    """Send frames on the accepted websocket, each its own text message: the fan-out's hot path.

    On Hypercorn, the frames a writer found queued are encoded by the connection's wsproto and
    handed to the transport as one write (:func:`_write_through`): Hypercorn's ASGI send costs,
    per message, Quart's ``send_data`` and its signal, an ASGI event and its dispatch, a lock and
    a shielded cancel scope around the socket write: over half of the writer's cost per frame
    under ``bench.fanout`` (cProfile; the rest is wsproto's encoding and the socket write). The
    lock and the scope are now paid once per wake-up, the rest not at all (Quart's
    ``websocket_sent`` signal, which nothing here listens to, is not sent). Elsewhere (another
    ASGI server) each frame goes through the ASGI send, bound once: Quart's ``websocket.send``
    resolves its context proxy and re-runs ``accept`` per call."""
    send = websocket._get_current_object()._send  # Quart's partial(send_data, <the ASGI send>)
    asgi_send = send.args[0] if isinstance(send, functools.partial) and send.args else None
    stream = getattr(asgi_send, "__self__", None)
    if isinstance(stream, WSStream):
        return functools.partial(_write_through, stream)

    async def one_by_one(frames: list[str]) -> None:
        for frame in frames:
            await send(frame)

    return one_by_one


async def _write_through(stream: WSStream, frames: list[str]) -> None:
    """What Hypercorn's ``WSStream.app_send`` does for a ``websocket.send`` event, for several
    frames in one write: nothing once the stream closed, nothing if the websocket is closing
    (wsproto refuses), else the encoded messages as one ``Data`` event to the HTTP/1 or HTTP/2
    connection, whose send lock keeps them whole between other writers' messages."""
    if stream.closed:
        return
    try:
        data = b"".join([stream.connection.send(TextMessage(data=frame)) for frame in frames])
    except LocalProtocolError:
        return
    await stream.send(Data(stream_id=stream.stream_id, data=data))


def _parse(data: str | bytes) -> Body:
    """A frame as its op's declaration. Raises FrameRefused (1003 not a JSON object, else 1008)."""
    if not isinstance(data, str):
        raise FrameRefused(UNSUPPORTED_DATA, "binary frames are not supported: send JSON text")
    if len(data) > MAX_FRAME:
        raise FrameRefused(POLICY_VIOLATION, f"frame: larger than {MAX_FRAME} characters")
    try:
        request = parse_json(data, "frame")
    except NotJson:
        raise FrameRefused(UNSUPPORTED_DATA, "frame: not JSON") from None
    except BadRequest as refused:
        raise FrameRefused(POLICY_VIOLATION, refused.message) from None
    if not isinstance(request, dict):
        raise FrameRefused(UNSUPPORTED_DATA, "frame: must be a JSON object")
    op = request.get("op")
    if not isinstance(op, str) or op not in FRAMES:
        raise FrameRefused(POLICY_VIOLATION, f"op: must be one of {', '.join(FRAMES)}")
    try:
        return validate(FRAMES[op], request, "frame")
    except BadRequest as refused:
        raise FrameRefused(POLICY_VIOLATION, refused.message) from None


async def _handle(hub: Hub, client: Client, outbox: Outbox, request: Body) -> None:
    try:
        match request:
            case JoinFrame(room=room, since=since, epoch=epoch):
                hub.join(client, room, since=since, epoch=epoch)
            case LeaveFrame(room=room):
                hub.leave(client, room)
            case PingFrame(id=ping_id):
                client.push(control("pong", id=ping_id))
            case SendFrame():
                await _send(client, outbox, request)
            case ReactFrame() | EditFrame() | DeleteFrame():
                await _operate(client, outbox, request)
    except (InvalidRoom, RoomForbidden) as error:
        raise FrameRefused(POLICY_VIOLATION, str(error)) from None


async def _send(client: Client, outbox: Outbox, request: SendFrame) -> None:
    key = request.idempotency_key
    await _answer(client, {"op": "send", "idempotency_key": key}, outbox.submit(
        _tenant(client, "send"), client.user, ticket_id=request.ticket_id, text=request.text, idempotency_key=key,
        quoted_message_id=request.quoted_message_id,
    ), lambda result: control("sent", idempotency_key=key, outbox=result))


_KINDS = {"react": MessageKind.REACTION, "edit": MessageKind.EDIT, "delete": MessageKind.REVOKE}


async def _operate(client: Client, outbox: Outbox, request: ReactFrame | EditFrame | DeleteFrame) -> None:
    text = getattr(request, "emoji", None) or getattr(request, "text", "")
    await _answer(client, {"op": request.op, "message_id": request.message_id}, outbox.operate(
        _tenant(client, request.op), ticket_id=request.ticket_id, message_id=request.message_id,
        kind=_KINDS[request.op], text=text,
    ), lambda result: control("updated", op=request.op, message=result))


def _tenant(client: Client, op: str) -> str:
    if not client.tenant_id:
        raise FrameRefused(POLICY_VIOLATION, f"{op}: the node admin has no tenant; use an agent token")
    return client.tenant_id


async def _answer(client: Client, error: dict, request: Any, answer: Any) -> None:
    """Await ``request``; push ``answer(result)``, or an ``error`` frame (``error``: what names the
    request) with the refusal's code as REST answers it: 404, 409, 400, 503."""
    try:
        result = await request
    except ApiError as refused:
        if refused.field is not None:
            error["field"] = refused.field
        client.push(control("error", code=refused.code, message=refused.message, **error))
    except HubError as refused:
        field, _, _ = str(refused).partition(":")
        client.push(control("error", code="invalid", message=str(refused), field=field, **error))
    else:
        client.push(answer(result))
