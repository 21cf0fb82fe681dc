"""``/asyncapi.json``: the websocket ``/ws`` as an AsyncAPI 2.6 document, linked from ``/docs``.

Generated like ``/openapi.json`` is: the client's messages are the JSON Schemas of the very
pydantic models the handler validates frames with (:data:`api._ws.FRAMES`), so a frame the
document refuses is a frame the handler refuses (close 1008). What the server sends is declared
here as models too (:data:`SERVER_FRAMES`: the hub's control frames and the event frame); the
websocket tests check real frames against them, so the document cannot drift from the wire.

Channels: ``/ws`` (the connection: requests in, answers out) and one per room kind
(``tenant:{tenant_id}``, ``ticket:{ticket_id}``...), whose events arrive after a ``join``.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, request

from actors.hub import RoomKind

from ._routing import Auth, endpoint
from ._ws import FRAMES, MAX_FRAME, POLICY_VIOLATION, UNSUPPORTED_DATA

bp = Blueprint("asyncapi", __name__)

REF_TEMPLATE = "#/components/schemas/{model}"


class ServerFrame(BaseModel):
    """Base of what the server sends: exactly these fields (the tests check real frames)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinedFrame(ServerFrame):
    type: Literal["joined"]
    room: str
    seq: Annotated[int, Field(ge=0, description="the room's last seq: events after it follow")]
    epoch: Annotated[str, Field(description="this numbering of the room: pass it back with since")]


class ResyncFrame(ServerFrame):
    type: Literal["resync"]
    room: str
    seq: Annotated[int, Field(ge=0, description="reload with REST, then go on from this seq")]
    epoch: str


class LeftFrame(ServerFrame):
    type: Literal["left"]
    room: str


class PongFrame(ServerFrame):
    type: Literal["pong"]
    id: Annotated[str | int | None, Field(description="the ping's id (null without one)")]


class OutboxRow(ServerFrame):
    created: Annotated[bool, Field(description="false: a repeat of the key, nothing new was sent")]
    id: int
    status: str
    message_id: str | None


class SentFrame(ServerFrame):
    type: Literal["sent"]
    idempotency_key: str
    outbox: OutboxRow


class UpdatedFrame(ServerFrame):
    type: Literal["updated"]
    op: Literal["react", "edit", "delete"]
    message: Annotated[dict[str, Any], Field(description="the message as message.updated carries it")]


class ErrorFrame(ServerFrame):
    type: Literal["error"]
    op: Literal["send", "react", "edit", "delete"]
    idempotency_key: Annotated[str | None, Field(description="send's")] = None
    message_id: Annotated[int | None, Field(description="react's, edit's, delete's")] = None
    code: Annotated[Literal["not_found", "conflict", "invalid", "unavailable"], Field(
        description="as REST's 404, 409, 400, 503")]
    message: str
    field: str | None = None


class LaggedFrame(ServerFrame):
    type: Literal["lagged"]
    dropped: Annotated[int, Field(ge=0, description="frames dropped: resume the rooms with since")]
    rooms: list[str]


class EventFrame(ServerFrame):
    type: Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$", description="message.created, ticket.updated...")]
    room: str
    seq: Annotated[int, Field(ge=1)]
    payload: dict[str, Any]
    at: Annotated[float, Field(description="Unix time in seconds")]


SERVER_FRAMES: dict[str, type[ServerFrame]] = {
    "joined": JoinedFrame, "left": LeftFrame, "pong": PongFrame, "sent": SentFrame, "updated": UpdatedFrame,
    "error": ErrorFrame,
    "lagged": LaggedFrame, "resync": ResyncFrame, "event": EventFrame,
}
"""What the server sends, by frame ``type`` (``event``: every event type)."""

ROOMS: dict[RoomKind, tuple[str, str | None]] = {
    RoomKind.TENANT: ("everything of the tenant: message.*, ticket.*, outbox.*, connection.update, "
                      "qrcode.updated", "tenant_id"),
    RoomKind.TICKET: ("the ticket's own: ticket.*, message.*, outbox.updated", "ticket_id"),
    RoomKind.STATUS: ("sessions entering a status (status:connected...): connection.update, qrcode.updated",
                      "status"),
    RoomKind.NOTIFICATIONS: ("admin notifications of the tenant: notification.high|medium|low", None),
    RoomKind.SUPERVISION: ("role admin only: supervision.<kind>, the tenant's part of the tree (the admin "
                           "token: the whole tree)", None),
}
"""Each room kind: what its events are, and the name of its argument (``ticket:{ticket_id}``)."""


def message_schema(model: type[BaseModel], schemas: dict) -> dict:
    """``model``'s JSON Schema, nested models moved to ``schemas`` (components)."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(schema.pop("$defs", {}))
    return schema


def document() -> dict:
    """The AsyncAPI document of ``/ws``."""
    schemas: dict = {}
    messages = {f"{op}_request": {"name": op, "title": f"op {op}", "payload": message_schema(model, schemas)}
                for op, model in FRAMES.items()}
    messages |= {kind: {"name": kind, "title": f"{kind} frame", "payload": message_schema(model, schemas)}
                 for kind, model in SERVER_FRAMES.items()}

    def one_of(*names: str) -> dict:
        return {"oneOf": [{"$ref": f"#/components/messages/{name}"} for name in names]}

    channels: dict = {"/ws": {
        "description": "The connection. Requests in (publish), their answers and lagged/resync out (subscribe).",
        "publish": {"operationId": "request", "message": one_of(*(f"{op}_request" for op in FRAMES))},
        "subscribe": {"operationId": "answer", "message": one_of(*(k for k in SERVER_FRAMES if k != "event"))},
    }}
    for kind, (events, argument) in ROOMS.items():
        name = f"{kind}:{{{argument}}}" if argument else str(kind)
        channel: dict = {"description": f"Room {name} (join it over /ws): {events}",
                         "subscribe": {"operationId": f"events_{kind}", "message": one_of("event")}}
        if argument:
            channel["parameters"] = {argument: {"schema": {"type": "string"}}}
        channels[name] = channel
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "zapvisor websocket", "version": version("zapvisor"),
                 "description": "Realtime events and sends over /ws. Authenticate with `Authorization: Bearer "
                                "<token>` or `?token=`. One JSON object per text frame; a binary frame or text "
                                f"that is not a JSON object closes with {UNSUPPORTED_DATA}, a frame the request "
                                f"schemas refuse (or over {MAX_FRAME} characters, or a room the token may not "
                                f"join) with {POLICY_VIOLATION}, the reason naming the field."},
        "servers": {"node": {"url": "{host}", "protocol": "ws",
                             "description": "this daemon: ws://<api.host>:<api.port>",
                             "variables": {"host": {"default": "localhost:8080"}}}},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


@endpoint(bp, "GET", "/asyncapi.json", summary="The websocket's AsyncAPI document", auth=Auth.NONE)
async def asyncapi(who: None):
    doc = document()
    doc["servers"]["node"]["variables"]["host"]["default"] = request.host  # where this client reached us
    return doc
