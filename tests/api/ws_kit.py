"""A served ``/ws`` for the websocket tests: the hub, our route on a QuartTrio app, Hypercorn on a
free port, and trio-websocket clients.

The app is minimal (the route and the Authority the REST app uses) so these tests stay fast and
independent of the REST endpoints; :mod:`tests.api.test_ws_app` runs the same route in the full app.
"""

from __future__ import annotations

import functools
import json
import types
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import attrs
import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

from actors.hub import Hub
from api._auth import Authority
from api._errors import NotFound, Unavailable
from api._ws import register_websocket

SECRET = "s" * 40
ADMIN_TOKEN = "admin-token-for-tests"

#: Real seconds a client waits for a frame: generous, the machine is shared.
FRAME_TIMEOUT = 10.0


@attrs.define(eq=False)
class Served:
    hub: Hub
    url: str
    authority: Authority
    node: Any

    def token(self, tenant: str = "acme", user: int = 1, role: str = "agent", ttl: float | None = None) -> str:
        return self.authority.issue(tenant, user, role, ttl)[0]

    @asynccontextmanager
    async def client(self, token: str | None = None, *, query: bool = False, **options: Any
                     ) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        token = self.token() if token is None else token
        url, headers = self.url, []
        if query:
            url += f"?token={token}"
        elif token:
            headers = [(b"Authorization", f"Bearer {token}".encode())]
        async with trio_websocket.open_websocket_url(url, extra_headers=headers, **options) as ws:
            yield ws


async def request(ws: trio_websocket.WebSocketConnection, **frame: Any) -> None:
    await ws.send_message(json.dumps(frame))


async def receive(ws: trio_websocket.WebSocketConnection) -> dict:
    with trio.fail_after(FRAME_TIMEOUT):
        return json.loads(await ws.get_message())


async def closed_with(ws: trio_websocket.WebSocketConnection) -> trio_websocket.CloseReason:
    """Read until the server closes; the close reason."""
    with trio.fail_after(FRAME_TIMEOUT):
        try:
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed as closed:
            return closed.reason


class RecordingOutbox:
    """Stands in for the node's outbox (tests/api/test_ws_app.py uses the real one): records the
    requests; ticket 404 does not exist, ticket 503 finds the outbox down."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def submit(self, tenant_id: str, user: str, *, ticket_id: int, text: str, idempotency_key: str,
                     quoted_message_id: int | None = None) -> dict:
        self.calls.append((tenant_id, user, ticket_id, text, idempotency_key))
        if ticket_id == 404:
            raise NotFound(f"no ticket {ticket_id}", "ticket_id")
        if ticket_id == 503:
            raise Unavailable("the outbox did not answer: AskTimeout")
        return {"created": True, "id": len(self.calls), "status": "queued"}

    async def operate(self, tenant_id: str, *, ticket_id: int, message_id: int, kind: Any, text: str) -> dict:
        """react / edit / delete: message 404 does not exist; else the message, changed."""
        self.calls.append((tenant_id, ticket_id, message_id, str(kind), text))
        if message_id == 404:
            raise NotFound(f"no message {message_id} in ticket {ticket_id}", "message_id")
        return {"id": message_id, "ticket_id": ticket_id, "kind": "text", "reactions": {"me": text}}


@asynccontextmanager
async def serve_ws(hub: Hub | None = None, outbox: Any = None) -> AsyncIterator[Served]:
    hub = hub or Hub()
    authority = Authority(ADMIN_TOKEN, SECRET, 3600.0, clock=lambda: hub.wall_clock(trio.current_time()))
    app = QuartTrio(__name__)
    app.extensions["zapvisor"] = types.SimpleNamespace(authority=authority, websocket_clients=lambda: 0)
    node = types.SimpleNamespace(hub=hub)
    register_websocket(app, node, outbox=outbox or RecordingOutbox())
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        urls = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=trio.sleep_forever))
        yield Served(hub, urls[0].replace("http://", "ws://") + "/ws", authority, node)
        nursery.cancel_scope.cancel()
