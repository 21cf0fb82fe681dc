"""The data lifecycle over HTTP against a real node: tenants' retention, deleting and purging a
session and a tenant (``?purge=now``), janitor runs and their counters in ``/metrics``."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.node import StopSession
from actors.sessions import SessionStatus

from tests.fixtures.simulator import driver_config

from .conftest import api_settings, open_api_server


@pytest.fixture
async def lifecycle_server(tmp_path, simulator):
    """``api_server`` whose simulated sessions keep their credentials where the node's purge looks
    (``<data_dir>/auth``, as ``zapvisor run`` wires them)."""
    data = tmp_path / "data"
    async with open_api_server(api_settings(data, simulator.url),
                               driver_config(simulator.url, data / "auth", tmp_path / "journal")) as server:
        yield server


async def _connected(api_server, simulator_control, tenant: str, session: str) -> None:
    created = await api_server.admin.post(f"/tenants/{tenant}/sessions", json={"id": session, "name": "Support"})
    assert created.status_code == 201, created.text
    await api_server.admin.post(f"/tenants/{tenant}/sessions/{session}/connect")
    await simulator_control.scan(session)
    await api_server.wait_status(session, SessionStatus.CONNECTED)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_retention_defaults_overrides_and_refusals(api_server) -> None:
    admin = api_server.admin
    await api_server.tenant("t1")
    got = (await admin.get("/tenants/t1/retention")).json()
    assert got["overrides"] == dict.fromkeys(["messages", "media", "closed_tickets", "webhook_deliveries", "audit"])
    assert got["effective"] == {"messages": 0, "media": 0, "closed_tickets": 0, "webhook_deliveries": 30,
                                "audit": 365}
    put = await admin.put("/tenants/t1/retention", json={"messages": 90, "audit": 0})
    assert put.status_code == 200, put.text
    assert put.json()["effective"]["messages"] == 90 and put.json()["effective"]["audit"] == 0
    assert (await admin.get("/tenants/t1/retention")).json() == put.json()
    for body, field in (({"messages": -1}, "messages"), ({"media": 1.5}, "media"), ({"forever": 1}, "forever"),
                        ({"audit": 10 ** 9}, "audit")):
        bad = await admin.put("/tenants/t1/retention", json=body)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == field, bad.text
    agent = api_server.client(await api_server.agent_token("t1", role="admin"))
    assert (await agent.get("/tenants/t1/retention")).status_code == 200
    assert (await agent.put("/tenants/t1/retention", json={"messages": 1})).status_code == 403
    assert (await admin.get("/tenants/nobody/retention")).status_code == 404


async def test_delete_a_session_then_purge_it_now(lifecycle_server, simulator_control) -> None:
    api_server = lifecycle_server
    admin, node = api_server.admin, api_server.node
    await api_server.tenant("t1")
    await _connected(api_server, simulator_control, "t1", "s1")
    await _connected(api_server, simulator_control, "t1", "s2")
    auth = Path(node.settings.node.data_dir) / "auth"
    await node.manager.ask(StopSession("s1"))  # paired but not connected: deleting it does not log out
    assert (auth / "s1.json").exists()
    deleted = await admin.delete("/tenants/t1/sessions/s1")
    assert deleted.status_code == 204
    assert (await node.store.get_session("s1")).status == "deleted"  # within its grace: kept
    assert (auth / "s1.json").exists()
    purged = await admin.delete("/tenants/t1/sessions/s1", params={"purge": "now"})
    assert purged.status_code == 200, purged.text
    assert purged.json()["sessions_purged"] == 1 and purged.json()["files"] == {"purge": 1}
    assert await node.store.get_session("s1") is None
    assert not (auth / "s1.json").exists()

    at_once = await admin.delete("/tenants/t1/sessions/s2", params={"purge": "now"})  # delete and purge
    assert at_once.status_code == 200 and at_once.json()["sessions_purged"] == 1
    assert await node.store.get_session("s2") is None
    assert node.board.get("s2") is None
    bad = await admin.delete("/tenants/t1/sessions/s2", params={"purge": "later"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "purge"
    assert (await admin.delete("/tenants/t1/sessions/s2", params={"purge": "now"})).status_code == 404
    reused = await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Again"})
    assert reused.status_code == 201  # purged: the id is free again

    metrics = (await api_server.client().get("/metrics")).text
    assert _metric(metrics, 'zapvisor_janitor_rows_deleted_total{kind="purge"}') >= 2
    assert _metric(metrics, 'zapvisor_janitor_files_deleted_total{kind="purge"}') >= 1  # s1's credentials


async def test_delete_a_tenant_then_purge_it(api_server, simulator_control) -> None:
    admin, node = api_server.admin, api_server.node
    await api_server.tenant("gone")
    await api_server.tenant("stays")
    await _connected(api_server, simulator_control, "gone", "g1")
    deleted = await admin.delete("/tenants/gone")
    assert deleted.status_code == 204, deleted.text
    assert node.board.get("g1") is None and (await node.store.get_session("g1")).status == "deleted"
    assert not [a.path for a in node.system.tree().walk() if a.path.startswith("/tenants/gone")]  # its actors stopped
    for method, path in (("GET", "/tenants/gone"), ("GET", "/tenants/gone/sessions"), ("DELETE", "/tenants/gone"),
                         ("GET", "/tenants/gone/retention")):
        gone = await admin.request(method, path)
        assert gone.status_code == 404 and gone.json()["error"]["field"] == "tenant_id", (path, gone.text)
    assert [t["id"] for t in (await admin.get("/tenants")).json()] == ["stays"]
    taken = await admin.post("/tenants", json={"id": "gone", "name": "Again"})
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "id"

    purged = await admin.delete("/tenants/gone", params={"purge": "now"})
    assert purged.status_code == 200, purged.text
    assert (purged.json()["tenants_purged"], purged.json()["sessions_purged"]) == (1, 1)
    assert await node.store.get_tenant("gone") is None and await node.store.get_session("g1") is None
    assert (await admin.post("/tenants", json={"id": "gone", "name": "Again"})).status_code == 201
    audit = [(a["action"], a["target"]) for a in (await admin.get("/supervision/audit")).json()]
    assert ("purge_tenant", "/tenants") in audit  # the purge itself is recorded, outside the tenant


async def test_run_the_janitor_now(api_server) -> None:
    admin = api_server.admin
    ran = await admin.post("/lifecycle/run")
    assert ran.status_code == 200, ran.text
    assert ran.json()["errors"] == 0
    metrics = (await api_server.client().get("/metrics")).text
    assert _metric(metrics, "zapvisor_janitor_runs_total") == 1
    assert _metric(metrics, "zapvisor_janitor_last_run_seconds") >= 0
    agent = api_server.client(await _agent(api_server))
    assert (await agent.post("/lifecycle/run")).status_code == 403


async def _agent(api_server) -> str:
    await api_server.tenant("t9")
    return await api_server.agent_token("t9")
