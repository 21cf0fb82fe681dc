"""Several real daemons (``zapvisor run`` subprocesses) on one throwaway PostgreSQL and Redis,
sessions on the real simulator process. Helpers read the cluster through its own API."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import httpx
import trio

from actors.simulator import SimulatorControl
from actors.store import PostgresBackend, open_store

from ..api.conftest import ADMIN_TOKEN, HTTP_TIMEOUT, Daemon, api_server  # noqa: F401 (a fixture)

SETTLE_TIMEOUT = 60.0
"""Real seconds for the cluster to converge on a loaded 2-core machine."""


@attrs.define(eq=False)
class Member:
    """One daemon of the cluster and an admin client on its API."""

    name: str
    daemon: Daemon
    url: str = ""
    client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.url = await self.daemon.start()
        self.client = httpx.AsyncClient(base_url=self.url, timeout=HTTP_TIMEOUT,
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    async def cluster(self) -> dict:
        response = await self.client.get("/cluster")
        assert response.status_code == 200, response.text
        return response.json()

    def alive(self) -> bool:
        return self.daemon.process is not None and self.daemon.process.poll() is None

    def kill(self) -> None:
        self.daemon.kill()

    def terminate(self) -> None:
        self.daemon.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float = SETTLE_TIMEOUT) -> int:
        with trio.fail_after(timeout):
            return await self.daemon.process.wait()


def cluster_member(tmp_path: Path, simulator_url: str, name: str, dsn: str, redis_url: str, **env: str) -> Member:
    """A daemon named ``name`` of the cluster on ``dsn`` and ``redis_url`` (not started)."""
    home = tmp_path / name
    home.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(home, simulator_url, name)
    daemon.env.update({
        "ZAPVISOR_NODE__NODE_ID": name,
        "ZAPVISOR_STORE__BACKEND": "postgres",
        "ZAPVISOR_STORE__POSTGRES_DSN": dsn,
        "ZAPVISOR_BUS__BACKEND": "redis",
        "ZAPVISOR_BUS__REDIS_URL": redis_url,
        "ZAPVISOR_SUPERVISION__BACKOFF_MIN": "0.1",
        "ZAPVISOR_SUPERVISION__BACKOFF_MAX": "0.5",
        "ZAPVISOR_SUPERVISION__RESTART_RATE": "100",
        "ZAPVISOR_LOGGING__LEVEL": "info",
        **{f"ZAPVISOR_{key.upper()}": value for key, value in env.items()},
    })
    return Member(name, daemon)


async def seed(dsn: str, control: SimulatorControl, sessions: set[str], status: str = "connecting") -> None:
    """Tenant ``acme`` and ``sessions`` in the store as live (``status``) and paired (credentials
    stored, accounts in the simulator): the cluster places and connects them by itself."""
    async with open_store(PostgresBackend(dsn)) as store:
        await store.upsert_tenant("acme", "Acme")
        for session_id in sorted(sessions):
            creds = (await control.create_account(session_id, paired=True))["creds"]
            await store.upsert_session(session_id, "acme", session_id)
            await store.set_session_status(session_id, status)
            await store.set_credentials(session_id, "simulated", creds)


@asynccontextmanager
async def running(*members: Member) -> AsyncIterator[tuple[Member, ...]]:
    """Start ``members`` together; kill whatever still runs on exit (and close the clients)."""
    try:
        async with trio.open_nursery() as nursery:
            for member in members:
                nursery.start_soon(member.start)
        yield members
    finally:
        for member in members:
            member.kill()
            if member.client is not None:
                await member.client.aclose()


def runners(view: dict) -> dict[str, list[str]]:
    """session id -> the nodes that say they run it, from one ``GET /cluster`` answer."""
    found: dict[str, list[str]] = {}
    for member in view["members"]:
        for session_id in member["sessions"]:
            found.setdefault(session_id, []).append(member["node_id"])
    return found


async def wait_converged(member: Member, sessions: set[str], nodes: set[str], *,
                         timeout: float = SETTLE_TIMEOUT) -> dict[str, str]:
    """Poll ``member`` until the members that may own sessions (live, not draining) are ``nodes``
    and every session runs on exactly one of them, connected (read through the API of
    ``member``); returns session -> node."""
    with trio.fail_after(timeout):
        while True:
            view = await member.cluster()
            found = runners(view)
            owning = {m["node_id"] for m in view["members"] if not m["draining"]}
            if owning == nodes and set(found) == sessions \
                    and all(len(where) == 1 and where[0] in nodes for where in found.values()):
                listed = (await member.client.get("/tenants/acme/sessions")).json()
                if all(s["status"] == "connected" for s in listed if s["id"] in sessions):
                    return {sid: where[0] for sid, where in found.items()}
            await trio.sleep(0.2)
