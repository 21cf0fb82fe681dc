"""Health, readiness, Prometheus metrics, the OpenAPI document, docs, dashboard and the error envelope."""

from __future__ import annotations

import re

import trio
import trio.testing

import api
from actors.store import StoreUnavailable
from api._routing import ENDPOINTS


def test_exports() -> None:
    assert sorted(api.__all__) == sorted([
        "ALGORITHM", "ROLES", "ApiError", "Authority", "BadRequest", "Conflict", "Forbidden", "NotFound",
        "Principal", "Unauthorized", "Unavailable", "create_app", "error_body", "serve_api",
        "set_websocket_clients", "tune_gc",
    ])
    assert all(issubclass(e, api.ApiError) for e in (api.BadRequest, api.NotFound, api.Unauthorized))
    assert issubclass(api.BadRequest, ValueError) and issubclass(api.NotFound, LookupError)


async def test_health_and_readiness(api_server) -> None:
    anonymous = api_server.client()
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert all(ready.json()["checks"].values())
    await api_server.node.system.supervisor("/infra").terminate_child("bus")
    not_ready = await anonymous.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["/infra/bus"] is False


async def test_readiness_names_a_gate_while_someone_waits_at_it(api_server) -> None:
    """A closed store gate makes /readyz 503 naming ``store`` only while a caller waits at it; once the
    waiters are gone (and the store is otherwise fine) the node is ready again. The real outage runs
    are tests/sessions/test_store_gate.py and test_bus_gate.py."""
    anonymous = api_server.client()
    gate = api_server.node.deps.store_gate

    async def write() -> None:  # the store, unreachable for as long as this test looks
        raise StoreUnavailable("not confirmed within 10 s (test)")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(gate.call, write)  # fails once: the gate goes down, the caller waits there
        await trio.testing.wait_all_tasks_blocked()
        waiting = await anonymous.get("/readyz")
        assert waiting.status_code == 503, waiting.text
        assert waiting.json()["waiting"] == {"store": {"mode": "down", "waiting": 1}}
        assert waiting.json()["checks"]["store_gate_open"] is False
        nursery.cancel_scope.cancel()  # the caller goes away; the gate stays down with nobody at it
    assert gate.mode == "down"
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200 and "waiting" not in ready.json(), ready.text


async def test_metrics_are_prometheus_text(api_server) -> None:
    await api_server.tenant("t1")
    await api_server.admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "x"})
    response = await api_server.client().get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples['zapvisor_sessions{status="stopped"}'] == 1
    assert samples['zapvisor_actor_restarts_total{path="/infra/store"}'] == 0
    assert 'zapvisor_mailbox_depth{path="/services/sessions"}' in samples
    assert {"zapvisor_outbox_depth", "zapvisor_outbox_unknown", "zapvisor_websocket_clients", "zapvisor_messages_stored_total",
            'zapvisor_store_batch_seconds{quantile="0.99"}', 'zapvisor_breakers{mode="closed"}'} <= set(samples)
    for family in re.findall(r"^# TYPE (\S+) (\S+)$", response.text, re.M):
        assert family[1] in ("gauge", "counter")


async def test_openapi_lists_every_route(api_server) -> None:
    doc = (await api_server.client().get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    declared = {(e.path, e.method) for e in ENDPOINTS if e.path not in ("/openapi.json", "/docs", "/")}
    assert documented == declared
    app_rules = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in api_server.app.url_map.iter_rules()}
    assert {path for path, _ in declared} <= app_rules
    docs = await api_server.client().get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


async def test_errors_are_json_everywhere(api_server) -> None:
    client = api_server.client()
    unknown = await client.get("/no/such/route")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete("/healthz")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    too_big = await api_server.admin.post("/tenants", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                                          headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and "error" in too_big.json()


async def test_dashboard_is_served(api_server) -> None:
    page = await api_server.client().get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "zapvisor" in page.text
    script = await api_server.client().get("/static/dashboard.js")
    assert script.status_code == 200
