"""``/healthz`` (the process answers) and ``/readyz`` (store, bus and tree up, nobody waiting at a gate)."""

from __future__ import annotations

from quart import Blueprint, jsonify

from ._routing import Auth, endpoint, state

bp = Blueprint("health", __name__)

READY_ACTORS = ("/infra/store", "/infra/bus", "/infra/board", "/services/sessions", "/tenants")
"""The actors a request may need: if one is not running, the node is not ready."""


@endpoint(bp, "GET", "/healthz", summary="Liveness: the process answers", auth=Auth.NONE)
async def healthz(who: None):
    return {"status": "ok"}


@endpoint(bp, "GET", "/readyz", summary="Readiness: store connected, bus and tree running, no dependency gate closed",
          auth=Auth.NONE)
async def readyz(who: None):
    """503 while a dependency gate is down: ``waiting`` names the dependency (``store``, ``bus``)
    and how many callers wait at it, e.g. ``{"store": {"mode": "down", "waiting": 10}}``."""
    node = state().node
    tree = node.system.tree()
    checks = {path: getattr(tree.find(path), "state", "missing") == "running" for path in READY_ACTORS}
    checks["store_connected"] = node.store.statistics().state == "connected"
    gates = (node.deps.store_gate.statistics(), node.deps.bus_gate.statistics())
    # a gate counts while someone waits at it or tries it (one left down by callers that went away does not)
    waiting = {g.name: {"mode": str(g.mode), "waiting": g.waiting + g.trial_running}
               for g in gates if g.mode != "up" and (g.waiting or g.trial_running)}
    for g in gates:
        checks[f"{g.name}_gate_open"] = g.name not in waiting
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    if waiting:
        body["waiting"] = waiting
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response
