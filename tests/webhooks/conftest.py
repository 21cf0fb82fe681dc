"""A local webhook receiver (a QuartTrio app on Hypercorn, free port) and a store with a webhook."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request
from quart_trio import QuartTrio

from actors.store import SqliteBackend, open_store

SECRET = "webhook-secret"


@attrs.define(eq=False)
class Receiver:
    """Answers POST /hook with the next status of ``script`` (then ``default``); records each call.

    ``hold`` (when set) makes every request wait for it — for concurrency tests.
    """

    script: list[int] = attrs.field(factory=list)
    default: int = 200
    calls: list[dict] = attrs.field(factory=list)
    hold: trio.Event | None = None
    active: int = 0
    max_active: int = 0
    url: str = ""
    arrived: trio.Event = attrs.field(factory=trio.Event)

    async def handle(self) -> tuple[str, int]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            body = await request.get_data()
            self.calls.append({"at": trio.current_time(), "body": body, "headers": dict(request.headers)})
            self.arrived.set()
            if self.hold is not None:
                await self.hold.wait()
            status = self.script.pop(0) if self.script else self.default
            return "", status
        finally:
            self.active -= 1

    async def wait_calls(self, count: int, timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while len(self.calls) < count:
                self.arrived = trio.Event()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = QuartTrio(__name__)
    app.add_url_rule("/hook", "hook", receiver.handle, methods=["POST"])
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=trio.sleep_forever))
        receiver.url = urls[0] + "/hook"
        yield receiver
        nursery.cancel_scope.cancel()


@pytest.fixture
def db_path(tmp_path) -> Any:
    return tmp_path / "zapvisor.db"


async def prepare(store: Any, url: str, events=("connection.update",), secret: str | None = SECRET) -> Any:
    await store.upsert_tenant("acme", "Acme")
    await store.upsert_tenant("zeta", "Zeta")
    return await store.create_webhook("acme", url, list(events), secret=secret)


@pytest.fixture
async def store(db_path) -> AsyncIterator[Any]:
    async with open_store(SqliteBackend(db_path)) as running:
        yield running
