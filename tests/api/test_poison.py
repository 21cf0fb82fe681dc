"""A poison corpus through every REST operation and every websocket op of the real app (Hypercorn, a
real node on SQLite, the simulator): never a 5xx, every refusal a 4xx with the JSON error shape,
nothing written by a refused request, the node still serving afterwards — and valid non-ASCII text
(emoji, right-to-left, zero-width marks) accepted and kept where text is expected (DESIGN §10).

The REST operations are read from ``/openapi.json`` (so a new endpoint is poisoned without
touching this file); each request carries exactly one poisoned part (a body field, a query
parameter, a path parameter or the whole body), the rest valid.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trio
import trio_websocket

from actors.sessions import SessionStatus
from actors.store import Queue

from .conftest import ApiServer, api_settings, open_api_server
from .ws_kit import FRAME_TIMEOUT

LONE_SURROGATE = "hi \ud800 there"
NUL = "nul\x00byte"
EMOJI = "ok 🎉👩‍💻 done"
RTL = "\u202eمرحبا\u200f שלום\u200b"
DEEP = "[" * 5_000 + "]" * 5_000  # 10 KB of nesting

STRING_POISONS: list[Any] = [LONE_SURROGATE, NUL, "x" * 70_000, "", "   ", 1, True, None, [], {}, EMOJI, RTL]
"""For string fields: invalid text, over-long, blank, wrong types, null — and valid non-ASCII."""
NUMBER_POISONS: list[Any] = [2**70, -(2**70), -1, 0, "1", 1.5, True, None, [1], {"a": 1}, LONE_SURROGATE]
OTHER_POISONS: list[Any] = ["x", 2**70, None, [LONE_SURROGATE], {"a": {"b": NUL}}]
MAX_QUERY = 8_000
"""Overlong query values are cut here: a URL longer than this is the HTTP server's to refuse."""
PATH_POISONS = ["%ED%A0%80", "%00", "x" * 5_000, str(2**70), "-1", quote(EMOJI), quote(RTL), "a%2Fb"]
"""URL-encoded: a lone surrogate's UTF-8 bytes, NUL, overlong, huge/negative integers, non-ASCII."""
RAW_BODIES = [DEEP.encode(), b'{"a": ' * 40 + b"1" + b"}" * 40, b"\xff\xfe not utf-8", b"null", b"[]", b'"text"',
              b"123", b"{", b'{"unknown_field": 1}', json.dumps({"\ud800": 1}).encode(), b'{"k\\u0000": 1}']

EXAMPLES = {
    "id": "p1", "name": "Name", "email": "someone@example.com", "url": "https://hooks.example.com/h",
    "events": ["*"], "path": "/infra/bus", "user_id": 1, "data": "aGVsbG8=", "mimetype": "text/plain",
    "emoji": "👍", "text": "hi",
}
"""A valid value for every required body field the API declares (the poisoned field replaces one)."""


@pytest.fixture(params=["sqlite", "postgres"])
async def api_server(request, tmp_path: Path, simulator, simulated_driver_config) -> AsyncIterator[ApiServer]:
    """The real app on each store backend: PostgreSQL is the one whose text refuses NULs outright."""
    store = {} if request.param == "sqlite" else {
        "ZAPVISOR_STORE__BACKEND": "postgres", "ZAPVISOR_STORE__POSTGRES_DSN": request.getfixturevalue("postgres_dsn")}
    settings = api_settings(tmp_path / "data", simulator.url, **store)
    async with open_api_server(settings, simulated_driver_config) as server:
        yield server


async def _node_with_a_ticket(api_server, simulator_control) -> dict[str, Any]:
    await api_server.tenant("t1")
    admin = api_server.admin
    assert (await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})).status_code == 201
    await admin.post("/tenants/t1/sessions/s1/connect")
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)
    token = await api_server.agent_token("t1")
    await simulator_control.send_message("s1", "hello", sender="5511988887777@s.whatsapp.net")
    agent = api_server.client(token)
    with trio.fail_after(30):
        while not (tickets := (await agent.get("/tenants/t1/tickets")).json()):
            await trio.sleep(0.05)
    hook = await admin.post("/tenants/t1/webhooks", json={"url": "https://hooks.example.com/h", "events": ["*"]})
    assert hook.status_code == 201, hook.text
    message_id = (await agent.get(f"/tenants/t1/tickets/{tickets[0]['id']}/messages")).json()["messages"][0]["id"]
    return {"tenant_id": "t1", "session_id": "s1", "ticket_id": tickets[0]["id"], "user_id": 1,
            "message_id": message_id,
            "webhook_id": hook.json()["id"], "delivery_id": 1, "job_id": 1, "queue": "outbox",
            "action": "start", "breaker_action": "reset", "token": token}


async def _snapshot(api_server) -> tuple:
    """What a refused request must not change: what requests write (not what the node updates by
    itself meanwhile, like a new session's debounced status)."""
    store = api_server.node.store
    return ([(t.id, t.name) for t in await store.list_tenants()],
            [(s.id, s.name, s.allow_groups) for s in await store.list_sessions("t1")],
            [(u.id, u.email, u.name, u.role) for u in await store.list_users("t1")],
            [(w.id, w.url, w.events, w.secret) for w in await store.list_webhooks("t1")],
            [(t.id, t.status, t.user_id, t.queue) for t in await store.list_tickets("t1", None, limit=1000)],
            [job.id for job in await store.list_jobs(Queue.OUTBOX, limit=1000)])


def _resolve(schema: dict, document: dict) -> dict:
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _poisons_for(schema: dict) -> list[Any]:
    kind = schema.get("type")
    if kind == "string":
        return STRING_POISONS
    if kind in ("integer", "number"):
        return NUMBER_POISONS
    return OTHER_POISONS


def _base(schema: dict, document: dict) -> dict:
    """The body with only its required fields, each with its example (nested objects built likewise)."""
    body = {}
    for name in schema.get("required", ()):
        prop = _resolve(schema["properties"][name], document)
        body[name] = _base(prop, document) if prop.get("type") == "object" else EXAMPLES[name]
    return body


def _body_cases(operation: dict, document: dict) -> list[tuple[str, bytes, str | None]]:
    """(what, raw body, free-text field that must take it): one poisoned field at a time (nested ones
    too), an unknown field, raw poisons. Valid non-ASCII in a free-text field must not be refused."""
    raw_cases = [("raw body", raw, None) for raw in RAW_BODIES]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return raw_cases
    schema = content["schema"]
    base = _base(schema, document)
    cases = []
    for name, prop in schema["properties"].items():
        prop = _resolve(prop, document)
        targets = [((name,), prop)]
        if prop.get("type") == "object":
            targets += [((name, inner), _resolve(p, document)) for inner, p in prop["properties"].items()]
        for path, target in targets:
            for poison in _poisons_for(target):
                body = copy.deepcopy(base)
                holder = body
                for key in path[:-1]:
                    holder = holder.setdefault(key, _base(prop, document))
                holder[path[-1]] = poison
                free_text = poison in (EMOJI, RTL) and target.get("pattern") == "\\S"
                cases.append((f"body {'.'.join(path)}={poison!r:.40}", _dumps(body),
                               ".".join(path) if free_text else None))
    cases.append(("unknown field", _dumps({**base, "allow_group": True}), None))
    return cases + raw_cases


def _dumps(value: Any) -> bytes:
    """JSON with lone surrogates escaped (as a hostile client would send them: valid JSON text)."""
    return json.dumps(value).encode()


def _url(template: str, values: dict, poisoned: str | None = None, poison: str = "") -> str:
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", poison if name == poisoned else str(value))
    return path


def _check(response, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), (what, response.text)
        if response.status_code == 400:
            assert isinstance(error.get("field"), str), (what, response.text)


async def test_poison_through_every_rest_operation(api_server, simulator_control) -> None:
    values = await _node_with_a_ticket(api_server, simulator_control)
    admin = api_server.admin
    document = (await admin.get("/openapi.json")).json()
    operations = [(path, method.upper(), op) for path, item in document["paths"].items() for method, op in item.items()]
    assert len(operations) >= 30
    refused = accepted = free_texts = 0
    for template, method, operation in operations:
        params = operation["parameters"]
        path_names = [p["name"] for p in params if p["in"] == "path"]
        headers = {"Idempotency-Key": "poison-key"} if any(p["name"] == "Idempotency-Key" for p in params) else {}
        requests: list[tuple[str, str, bytes | None, str | None]] = []
        url = _url(template, values)
        for what, raw, free_text in _body_cases(operation, document):
            requests.append((what, url, raw, free_text))
        for param in (p for p in params if p["in"] == "query"):
            for poison in _poisons_for(param["schema"]):
                text = poison if isinstance(poison, str) else json.dumps(poison)
                encoded = quote(text[:MAX_QUERY].encode("utf-8", "surrogatepass"))
                requests.append((f"query {param['name']}={text:.30}", f"{url}?{param['name']}={encoded}", None, None))
        for name in path_names:
            for poison in PATH_POISONS:
                requests.append((f"path {name}={poison:.30}", _url(template, values, name, poison), None, None))
        requests.append(("unknown query parameter", f"{url}?allow_group=true", None, None))
        for what, target, raw, free_text in requests:
            before = await _snapshot(api_server) if method != "GET" else None
            response = await admin.request(method, target, content=raw,
                                           headers={**headers, "Content-Type": "application/json"})
            _check(response, f"{method} {template} {what}")
            if free_text is not None:
                refused_field = response.json()["error"].get("field") if response.status_code >= 400 else None
                assert refused_field != free_text, (f"{method} {template}: valid text refused in {free_text}",
                                                    response.text)
                free_texts += 1
            if response.status_code >= 400:
                refused += 1
                if before is not None:
                    assert await _snapshot(api_server) == before, f"{method} {template} {what} wrote something"
            else:
                accepted += 1
    assert refused > accepted > 0 and free_texts > 0  # mostly refused; valid text reached free-text fields
    await _still_serving(api_server, values)


async def test_valid_non_ascii_text_is_accepted_and_kept(api_server, simulator_control) -> None:
    values = await _node_with_a_ticket(api_server, simulator_control)
    admin = api_server.admin
    outbox = await api_server.node.store.list_jobs(Queue.OUTBOX, limit=1000)
    made = await admin.post("/tenants", json={"id": "intl", "name": EMOJI + RTL})
    assert made.status_code == 201 and made.json()["name"] == (EMOJI + RTL).strip()
    user = await admin.post("/tenants/t1/users", json={"email": "rtl@example.com", "name": RTL})
    assert user.status_code == 201 and user.json()["name"] == RTL.strip()
    sent = await admin.post(f"/tenants/t1/tickets/{values['ticket_id']}/messages", json={"text": EMOJI},
                            headers={"Idempotency-Key": "emoji-1"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["item"]["payload"]["text"] == EMOJI
    for refused_text in (LONE_SURROGATE, NUL):
        refused = await admin.post(f"/tenants/t1/tickets/{values['ticket_id']}/messages", content=_dumps(
            {"text": refused_text}), headers={"Idempotency-Key": "bad-1", "Content-Type": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "text"
    assert len(await api_server.node.store.list_jobs(Queue.OUTBOX, limit=1000)) == len(outbox) + 1


async def _ws_answer(ws_url: str, token: str, frame: str) -> tuple[str, Any]:
    """("closed", code) when the server refuses the frame, else ("reply", the first frame back)."""
    async with trio_websocket.open_websocket_url(f"{ws_url}?token={token}") as ws:
        await ws.send_message(frame)
        try:
            with trio.fail_after(FRAME_TIMEOUT * 3):
                return "reply", json.loads(await ws.get_message())
        except trio_websocket.ConnectionClosed as closed:
            return "closed", closed.reason.code


async def test_poison_through_every_websocket_op(api_server, simulator_control) -> None:
    values = await _node_with_a_ticket(api_server, simulator_control)
    ws_url = api_server.url.replace("http://", "ws://") + "/ws"
    ops = {
        "join": {"op": "join", "room": "tenant:t1", "since": 0, "epoch": "e"},
        "leave": {"op": "leave", "room": "tenant:t1"},
        "ping": {"op": "ping", "id": "p"},
        "send": {"op": "send", "ticket_id": values["ticket_id"], "text": "hi", "idempotency_key": "ws-1"},
        "react": {"op": "react", "ticket_id": values["ticket_id"], "message_id": values["message_id"], "emoji": "👍"},
        "edit": {"op": "edit", "ticket_id": values["ticket_id"], "message_id": values["message_id"], "text": "hi"},
        "delete": {"op": "delete", "ticket_id": values["ticket_id"], "message_id": values["message_id"]},
    }
    before = await api_server.node.store.list_tickets("t1", None, limit=1000)
    cases = [json.dumps(frame | {field: poison}) for frame in ops.values() for field in frame if field != "op"
             for poison in (NUMBER_POISONS if isinstance(frame[field], int) else STRING_POISONS)]
    cases += [json.dumps(frame | {"unknown_field": 1}) for frame in ops.values()]
    cases += [DEEP, json.dumps({"op": "send", "ticket_id": 2**70, "text": "x", "idempotency_key": "k"}),
              json.dumps(ops["send"] | {"idempotency_key": "k" * 60_000})[:65_000], '{"op": "\\ud800"}', "null"]
    closed = replied = 0
    for frame in cases:
        kind, answer = await _ws_answer(ws_url, values["token"], frame)
        if kind == "closed":
            assert answer in (1003, 1008), (frame[:200], answer)
            closed += 1
        else:
            assert answer["type"] in ("joined", "left", "pong", "sent", "updated", "error", "resync"), (frame[:200],
                                                                                                     answer)
            replied += 1
    assert closed > replied > 0  # mostly refused; valid non-ASCII answered
    # Valid non-ASCII is sent, and kept as sent.
    kind, answer = await _ws_answer(ws_url, values["token"], json.dumps(ops["send"] | {"text": EMOJI + RTL,
                                                                                      "idempotency_key": "ws-2"}))
    assert (kind, answer["type"]) == ("reply", "sent"), answer
    assert [t.id for t in await api_server.node.store.list_tickets("t1", None, limit=1000)] == [t.id for t in before]
    await _still_serving(api_server, values)


async def _still_serving(api_server, values: dict) -> None:
    client = api_server.client()
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    tree = api_server.node.system.tree()
    assert all(getattr(tree.find(path), "state", None) == "running"
               for path in ("/services/outbox", "/services/sessions", "/services/webhooks", "/tenants"))
    sent = await api_server.admin.post(f"/tenants/t1/tickets/{values['ticket_id']}/messages", json={"text": "still"},
                                       headers={"Idempotency-Key": "after-poison"})
    assert sent.status_code == 202, sent.text


async def test_the_reported_cases_are_refused_naming_the_field(api_server, simulator_control) -> None:
    """Issue 13's reproductions, one by one: the status and the field of each refusal."""
    values = await _node_with_a_ticket(api_server, simulator_control)
    admin, ticket = api_server.admin, f"/tenants/t1/tickets/{values['ticket_id']}"
    key = {"Idempotency-Key": "k-1"}
    cases = [
        ("POST", f"{ticket}/messages", {"text": LONE_SURROGATE}, key, 400, "text"),
        ("POST", f"{ticket}/messages", {"text": "x" * 5_000}, key, 400, "text"),
        ("POST", f"{ticket}/messages", {"text": "x"}, {"Idempotency-Key": "k" * 201}, 400, "Idempotency-Key"),
        ("POST", "/tenants", {"id": "t9", "name": LONE_SURROGATE}, {}, 400, "name"),
        ("POST", "/tenants", {"id": "t9", "name": None}, {}, 400, "name"),
        ("POST", "/tenants/t1/users", {"email": "a", "name": "A"}, {}, 400, "email"),
        ("POST", "/tenants/t1/users", {"email": "a@b.c", "name": LONE_SURROGATE}, {}, 400, "name"),
        ("POST", "/tenants/t1/tokens", {"user_id": "1"}, {}, 400, "user_id"),
        ("POST", "/tenants/t1/sessions", {"id": "s9", "name": "S", "allow_group": True}, {}, 400, "allow_group"),
        ("POST", "/tenants/t1/sessions", {"id": "s9", "name": LONE_SURROGATE}, {}, 400, "name"),
        ("POST", f"{ticket}/transfer", {"queue": LONE_SURROGATE}, {}, 400, "queue"),
        ("POST", f"{ticket}/accept", {"user_id": 2**70}, {}, 400, "user_id"),
        ("POST", "/tenants/t1/webhooks", {"url": "https://e.example.com/\ud800", "events": ["*"]}, {}, 400, "url"),
        ("POST", "/tenants/t1/webhooks", {"url": "https://e.example.com/", "events": ["*"], "secret": NUL}, {}, 400,
         "secret"),
        ("GET", "/tenants/t1/tickets/" + str(2**70), None, {}, 404, "ticket_id"),
        ("GET", "/tenants/t1/tickets/abc", None, {}, 404, "ticket_id"),  # issue 16: was Quart's bare 404
    ]
    for method, path, body, headers, status, field in cases:
        raw = None if body is None else _dumps(body)
        response = await admin.request(method, path, content=raw, headers={**headers, "Content-Type": "application/json"})
        assert (response.status_code, response.json()["error"].get("field")) == (status, field), (path, body, response.text)
    deep = await admin.post("/tenants", content=DEEP.encode(), headers={"Content-Type": "application/json"})
    assert (deep.status_code, deep.json()["error"]["field"]) == (400, "body") and len(DEEP) == 10_000
    for url in ("http://127.0.0.1/", "http://localhost:5432/", "http://[::1]/", "http://0.0.0.0/", "http://10.0.0.1/",
                "http://169.254.169.254/", "http://metadata.google.internal/", "http://2130706433/",
                "http://0x7f000001/", "http://user:pw@example.com/", f"{api_server.url}/tenants"):
        hook = await admin.post("/tenants/t1/webhooks", json={"url": url, "events": ["*"]})
        assert (hook.status_code, hook.json()["error"]["field"]) == (400, "url"), (url, hook.text)
    wrong_method = await admin.put("/tenants")
    assert wrong_method.status_code == 405 and set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert (await api_server.node.store.list_tenants())[1:] == []  # only t1: nothing above was written
    ws_url = api_server.url.replace("http://", "ws://") + "/ws"
    long_key = {"op": "send", "ticket_id": values["ticket_id"], "text": "x", "idempotency_key": "k" * 201}
    assert await _ws_answer(ws_url, values["token"], json.dumps(long_key)) == ("closed", 1008)
    assert await _ws_answer(ws_url, values["token"], DEEP) == ("closed", 1008)


def _schemas(node: Any, where: str = ""):
    """Every (location, schema) in an OpenAPI document part that describes one value."""
    if isinstance(node, dict):
        if "type" in node:
            yield where, node
        for key, value in node.items():
            yield from _schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas(value, f"{where}/{index}")


UNBOUNDED_BY_SCHEMA = {"data"}
"""Strings bounded elsewhere: ``media.data`` by the body cap (1 MiB) and ``media.max_bytes`` once decoded."""


async def test_the_document_bounds_every_value_and_closes_every_object(api_server) -> None:
    """What validation enforces is what the document says: objects refuse unknown properties, numbers
    have both bounds, strings a length, a pattern or an enum — and the declared email minLength holds."""
    document = (await api_server.client().get("/openapi.json")).json()
    checked = 0
    for where, schema in _schemas({"paths": document["paths"], "components": document["components"]["schemas"]}):
        if where.startswith("/components/Error"):
            continue
        checked += 1
        if schema["type"] == "object":
            assert schema.get("additionalProperties") is False, where
        elif schema["type"] in ("integer", "number"):
            assert "minimum" in schema and "maximum" in schema, where
        elif schema["type"] == "string" and where.rsplit("/", 1)[-1] not in UNBOUNDED_BY_SCHEMA:
            assert {"maxLength", "pattern", "enum"} & set(schema), where
    assert checked > 50
    user = document["paths"]["/tenants/{tenant_id}/users"]["post"]["requestBody"]["content"]["application/json"]
    assert user["schema"]["properties"]["email"]["minLength"] == 3
    await api_server.tenant("t1")
    short = await api_server.admin.post("/tenants/t1/users", json={"email": "a@", "name": "A"})
    assert (short.status_code, short.json()["error"]["field"]) == (400, "email")
