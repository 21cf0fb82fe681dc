"""A whole node with the flows on a real simulator and a real store (SQLite or PostgreSQL).

Sessions are provisioned paired (the simulator's ``create_account`` credentials written where
the simulated driver reads them), so a test goes straight to traffic. ``Recorder`` is a hub tap
keeping every event the flows emitted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from actors.node import CreateSession, Node, StartSession, open_node
from actors.sessions import SessionInfo, SessionStatus
from config import Settings, load_settings


def flow_env(tmp_path: Path, simulator_url: str, dsn: str | None = None, **overrides: str) -> dict[str, str]:
    env = {
        "ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "data"),
        "ZAPVISOR_SESSIONS__DRIVER": "simulated",
        "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator_url,
        "ZAPVISOR_SESSIONS__STATUS_DEBOUNCE": "0.05",
        "ZAPVISOR_SESSIONS__RESTORE_ON_BOOT": "true",
        "ZAPVISOR_SUPERVISION__BACKOFF_MIN": "0.1",
        "ZAPVISOR_SUPERVISION__BACKOFF_MAX": "0.5",
        "ZAPVISOR_OUTBOX__PACING_INTERVAL": "0.0",
        "ZAPVISOR_OUTBOX__PACING_JITTER": "0.0",
    }
    if dsn is not None:
        env |= {"ZAPVISOR_STORE__BACKEND": "postgres", "ZAPVISOR_STORE__POSTGRES_DSN": dsn}
    env |= {f"ZAPVISOR_{key.upper()}": value for key, value in overrides.items()}
    return env


def flow_settings(tmp_path: Path, simulator_url: str, dsn: str | None = None, **overrides: str) -> Settings:
    return load_settings(env=flow_env(tmp_path, simulator_url, dsn, **overrides))


@pytest.fixture(params=["sqlite", "postgres"])
def backend_dsn(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite, a fresh PostgreSQL database's DSN otherwise."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_dsn")


@attrs.define(eq=False)
class Recorder:
    """A hub tap: every (tenant, type, payload) the flows emitted on this node."""

    events: list[tuple[str, str, dict]] = attrs.field(factory=list)

    def __call__(self, tenant_id: str, type: str, payload: dict) -> None:
        self.events.append((tenant_id, type, payload))

    def of(self, type: str) -> list[dict]:
        return [payload for _, kind, payload in self.events if kind == type]


@asynccontextmanager
async def flow_node(settings: Settings) -> AsyncIterator[tuple[Node, Recorder]]:
    recorder = Recorder()
    async with open_node(settings) as node:
        node.hub.add_tap(recorder)
        yield node, recorder


async def wait_status(node: Node, session_id: str, *statuses: SessionStatus, timeout: float = 20.0) -> SessionInfo:
    with trio.fail_after(timeout):
        while True:
            info = node.board.get(session_id)
            if info is not None and info.status in statuses:
                return info
            await trio.sleep(0.01)


async def provision(node: Node, control, session_id: str, *, tenant: str = "acme",
                    allow_groups: bool = False) -> None:
    """A paired, connected session of ``tenant`` (created in the store, started by the manager)."""
    if await node.store.get_tenant(tenant) is None:
        await node.store.upsert_tenant(tenant, tenant.title())
    account = await control.create_account(session_id, paired=True)
    auth = Path(node.settings.node.data_dir) / "auth" / f"{session_id}.json"
    await trio.to_thread.run_sync(_write_creds, auth, account["creds"])
    await node.manager.ask(CreateSession(tenant, session_id, f"desk {session_id}", allow_groups=allow_groups))
    await node.manager.ask(StartSession(session_id))
    await wait_status(node, session_id, SessionStatus.CONNECTED)


def _write_creds(path: Path, creds: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"creds": creds}), encoding="utf-8")


async def eventually(check: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.02) -> object:
    """Poll an async ``check`` until it returns something truthy (bounded by ``timeout``)."""
    with trio.fail_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            await trio.sleep(interval)


def contact(i: int) -> str:
    return f"55219{i:08d}@s.whatsapp.net"
