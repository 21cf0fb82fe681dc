"""``/healthz`` (the process answers) and ``/readyz`` (store, bus and tree up)."""

from __future__ import annotations

from quart import Blueprint, jsonify

from ._routing import Auth, endpoint, state

bp = Blueprint("health", __name__)

READY_ACTORS = ("/infra/store", "/infra/bus", "/infra/board", "/services/sessions", "/tenants")
"""The actors a request may need: if one is not running, the node is not ready."""


@endpoint(bp, "GET", "/healthz", summary="Liveness: the process answers", auth=Auth.NONE)
async def healthz(who: None):
    return {"status": "ok"}


@endpoint(bp, "GET", "/readyz", summary="Readiness: store connected, bus and tree running", auth=Auth.NONE)
async def readyz(who: None):
    node = state().node
    tree = node.system.tree()
    checks = {path: getattr(tree.find(path), "state", "missing") == "running" for path in READY_ACTORS}
    checks["store_connected"] = node.store.statistics().state == "connected"
    ready = all(checks.values())
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response
