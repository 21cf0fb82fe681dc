"""The real app served by Hypercorn on a free port, around a real node (SQLite, memory bus, simulator).

``api_server`` gives a :class:`ApiServer`: its ``url``, the running ``node``, and
httpx clients (``admin`` with the admin token, ``client(token)`` for agents).
Everything is real: the tree, the store, the simulated WhatsApp server process.
:class:`Daemon` runs ``zapvisor run`` itself as a subprocess, for the tests that need the process.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import httpx
import pytest
import trio

from actors.drivers import SimulatedDriver, SimulatedDriverConfig
from actors.node import Node, open_node
from actors.sessions import SessionInfo, SessionStatus
from quart_trio import QuartTrio

from api import create_app, serve_api
from config import Settings, load_settings

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef0123"
HTTP_TIMEOUT = 60.0
"""Generous real-time bound for one request on a loaded 2-core machine."""
ZAPVISOR = str(Path(sys.executable).with_name("zapvisor"))
START_TIMEOUT = 60.0
"""Real seconds for a daemon to listen: imports and the tree's start on a loaded machine."""


def api_settings(data_dir: Path, simulator_url: str, **extra: str) -> Settings:
    """Test-speed settings: simulated sessions, quick status writes and backoff, our secrets."""
    env = {
        "ZAPVISOR_NODE__DATA_DIR": str(data_dir),
        "ZAPVISOR_SESSIONS__DRIVER": "simulated",
        "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator_url,
        "ZAPVISOR_SESSIONS__STATUS_DEBOUNCE": "0.05",
        "ZAPVISOR_SUPERVISION__BACKOFF_MIN": "0.1",
        "ZAPVISOR_SUPERVISION__BACKOFF_MAX": "0.5",
        "ZAPVISOR_SUPERVISION__RESTART_RATE": "100",
        "ZAPVISOR_WEBHOOKS__BACKOFF_INITIAL": "0.05",
        "ZAPVISOR_API__ADMIN_TOKEN": ADMIN_TOKEN,
        "ZAPVISOR_API__JWT_SECRET": JWT_SECRET,
        "ZAPVISOR_API__PORT": "0",
        **extra,
    }
    return load_settings(env=env)


@attrs.define(eq=False)
class ApiServer:
    url: str
    node: Node
    app: QuartTrio
    admin: httpx.AsyncClient
    _clients: list[httpx.AsyncClient] = attrs.field(factory=list)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """A client sending ``token`` as bearer (none: unauthenticated); closed with the server."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=HTTP_TIMEOUT)
        self._clients.append(client)
        return client

    async def tenant(self, tenant_id: str) -> None:
        response = await self.admin.post("/tenants", json={"id": tenant_id, "name": tenant_id.upper()})
        assert response.status_code == 201, response.text

    async def agent_token(self, tenant_id: str, role: str = "agent", email: str | None = None) -> str:
        user = await self.admin.post(f"/tenants/{tenant_id}/users",
                                     json={"email": email or f"{role}@{tenant_id}.test", "name": role, "role": role})
        assert user.status_code == 201, user.text
        token = await self.admin.post(f"/tenants/{tenant_id}/tokens", json={"user_id": user.json()["id"]})
        assert token.status_code == 201, token.text
        return token.json()["token"]

    async def wait_status(self, session_id: str, *statuses: SessionStatus, timeout: float = 30.0,
                          where: Callable[[SessionInfo], bool] = lambda info: True) -> SessionInfo:
        with trio.fail_after(timeout):
            while True:
                info = self.node.board.get(session_id)
                if info is not None and info.status in statuses and where(info):
                    return info
                await trio.sleep(0.02)


@asynccontextmanager
async def open_api_server(settings: Settings, driver_config: SimulatedDriverConfig) -> AsyncIterator[ApiServer]:
    """A node for ``settings`` with its API on a free port; everything stops on exit."""
    factory = functools.partial(SimulatedDriver, config=driver_config)
    async with open_node(settings, driver_factory=factory) as node:
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            app = create_app(node)
            urls = await nursery.start(functools.partial(serve_api, node, stop, host="127.0.0.1", port=0, app=app))
            server = ApiServer(urls[0], node, app, httpx.AsyncClient(
                base_url=urls[0], headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=HTTP_TIMEOUT))
            try:
                yield server
            finally:
                for client in (server.admin, *server._clients):
                    await client.aclose()
                stop.set()


@pytest.fixture
async def api_server(tmp_path: Path, simulator, simulated_driver_config) -> AsyncIterator[ApiServer]:
    settings = api_settings(tmp_path / "data", simulator.url)
    async with open_api_server(settings, simulated_driver_config) as server:
        yield server


@pytest.fixture
async def local_hooks_server(tmp_path: Path, simulator, simulated_driver_config) -> AsyncIterator[ApiServer]:
    """``api_server`` whose webhooks may target this machine: 127.0.0.1 allowed the documented way,
    with ``webhooks.allow_targets`` (as an operator allows an on-premise receiver)."""
    settings = api_settings(tmp_path / "data", simulator.url, ZAPVISOR_WEBHOOKS__ALLOW_TARGETS="127.0.0.1/32")
    async with open_api_server(settings, simulated_driver_config) as server:
        yield server


class Daemon:
    """``zapvisor run`` with its log in a file (never a pipe that could fill and block it)."""

    def __init__(self, tmp_path: Path, simulator_url: str, name: str) -> None:
        self.log = tmp_path / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
        env.update({
            "ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "data"),
            "ZAPVISOR_SESSIONS__DRIVER": "simulated",
            "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator_url,
            "ZAPVISOR_SESSIONS__STATUS_DEBOUNCE": "0.05",
            "ZAPVISOR_OUTBOX__PACING_INTERVAL": "0.05",
            "ZAPVISOR_OUTBOX__PACING_JITTER": "0",
            "ZAPVISOR_API__ADMIN_TOKEN": ADMIN_TOKEN,
            "ZAPVISOR_API__JWT_SECRET": JWT_SECRET,
            "ZAPVISOR_API__PORT": "0",
        })
        self.env, self.cwd = env, tmp_path
        self.process: trio.Process | None = None

    async def start(self) -> str:
        """Start it; returns the API's URL once it listens."""
        with open(self.log, "wb") as log:
            self.process = await trio.lowlevel.open_process([ZAPVISOR, "run"], env=self.env, cwd=self.cwd,
                                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        with trio.fail_after(START_TIMEOUT):
            while not (found := re.search(r"Running on (http://[\d.:]+)", self.log.read_text())):
                assert self.process.poll() is None, self.log.read_text()
                await trio.sleep(0.05)
        return found.group(1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
