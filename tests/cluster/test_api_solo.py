"""With the memory bus a node is a cluster of one: ``GET /cluster`` lists it with what it runs."""

from __future__ import annotations

from actors.sessions import SessionStatus


async def test_a_memory_bus_node_is_a_cluster_of_one(api_server, simulator_control) -> None:
    await api_server.tenant("acme")
    assert (await api_server.admin.post("/tenants/acme/sessions", json={"id": "s1", "name": "desk"})).status_code == 201
    assert (await api_server.admin.post("/tenants/acme/sessions/s1/connect", json={})).status_code == 200
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)
    view = (await api_server.admin.get("/cluster")).json()
    capacity = api_server.node.settings.sessions.max_sessions
    assert view == {
        "node_id": "node-1", "sessions": 1, "capacity": capacity,
        "members": [{"node_id": "node-1", "url": api_server.url, "capacity": capacity, "draining": False,
                     "sessions": ["s1"], "load": 1, "self": True, "utilisation": 1 / capacity}],
    }
    forbidden = await api_server.client((await api_server.agent_token("acme", "admin"))).get("/cluster")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
