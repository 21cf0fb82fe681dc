"""``/asyncapi.json``: generated from the frame declarations, agreeing with what ``/ws`` does."""

from __future__ import annotations

import jsonschema_rs
import pytest

from actors.hub import Room, RoomKind
from api._asyncapi import REF_TEMPLATE, SERVER_FRAMES, document
from api._ws import FRAMES

from .ws_kit import closed_with, receive, request, serve_ws

POLICY = 1008


def _payload(doc: dict, message: str) -> dict:
    return doc["components"]["messages"][message]["payload"]


def _refs(message: dict) -> set[str]:
    return {ref["$ref"].rsplit("/", 1)[1] for ref in message["oneOf"]}


async def test_the_document_is_served_from_the_frame_models_and_linked_from_docs(api_server) -> None:
    anonymous = api_server.client()
    response = await anonymous.get("/asyncapi.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["asyncapi"] == "2.6.0"
    assert f'ws://{doc["servers"]["node"]["variables"]["host"]["default"]}' == api_server.url.replace("http", "ws")
    connection = doc["channels"]["/ws"]
    assert _refs(connection["publish"]["message"]) == {
        f"{op}_request" for op in ("join", "leave", "ping", "send", "react", "edit", "delete")}
    assert _refs(connection["subscribe"]["message"]) == {
        "joined", "left", "pong", "sent", "updated", "error", "lagged", "resync"}
    for op, model in FRAMES.items():  # the very schemas the handler validates with
        assert _payload(doc, f"{op}_request") == model.model_json_schema(ref_template=REF_TEMPLATE)
    for kind, model in SERVER_FRAMES.items():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, nested in schema.pop("$defs", {}).items():
            assert doc["components"]["schemas"][name] == nested
        assert _payload(doc, kind) == schema
    rooms = {name.split(":")[0] for name in doc["channels"] if name != "/ws"}
    assert rooms == {str(kind) for kind in RoomKind}
    assert all(_refs(doc["channels"][name]["subscribe"]["message"]) == {"event"}
               for name in doc["channels"] if name != "/ws")
    docs = await anonymous.get("/docs")
    assert docs.status_code == 200 and 'href="/asyncapi.json"' in docs.text


@pytest.mark.parametrize("frame", [
    {"op": "join", "room": ""},
    {"op": "join", "room": "tenant:acme", "since": -1},
    {"op": "ping", "id": 1.5},
    {"op": "leave", "room": "tenant:acme", "extra": True},
    {"op": "send", "ticket_id": 0, "text": "hi", "idempotency_key": "k"},
    {"op": "send", "ticket_id": 1, "text": "   ", "idempotency_key": "k"},
    {"op": "send", "ticket_id": 1, "text": "hi"},
    {"op": "react", "ticket_id": 1, "message_id": 0, "emoji": "👍"},
    {"op": "edit", "ticket_id": 1, "message_id": 2, "text": " "},
    {"op": "delete", "ticket_id": 1},
])
async def test_a_frame_the_document_refuses_the_handler_refuses(frame: dict) -> None:
    schema = _payload(document(), f"{frame['op']}_request")
    assert not jsonschema_rs.validator_for(schema).is_valid(frame)
    async with serve_ws() as served, served.client() as ws:
        await request(ws, **frame)
        reason = await closed_with(ws)
    assert reason.code == POLICY, reason


async def test_frames_on_the_wire_fit_the_document() -> None:
    """What the document accepts the handler takes, and what the server answers fits its models."""
    doc = document()
    requests = [
        {"op": "join", "room": "tenant:acme", "since": 0},
        {"op": "ping", "id": "p-1"},
        {"op": "ping"},
        {"op": "send", "ticket_id": 404, "text": "hi", "idempotency_key": "k-1"},
        {"op": "react", "ticket_id": 1, "message_id": 7, "emoji": "👍"},
        {"op": "delete", "ticket_id": 1, "message_id": 404},
        {"op": "leave", "room": "tenant:acme"},
    ]
    async with serve_ws() as served, served.client() as ws:
        answers = []
        for frame in requests:
            assert jsonschema_rs.validator_for(_payload(doc, f"{frame['op']}_request")).is_valid(frame)
            await request(ws, **frame)
            answers.append(await receive(ws))
            if frame["op"] == "join":
                served.hub.publish(Room.tenant("acme"), "ticket.updated", {"id": 1})
                answers.append(await receive(ws))
    assert [a["type"] for a in answers] == [
        "joined", "ticket.updated", "pong", "pong", "error", "updated", "error", "left"]
    for answer in answers:
        SERVER_FRAMES.get(answer["type"], SERVER_FRAMES["event"]).model_validate(answer)
