"""The supervision tree over HTTP (admin only): snapshots, actor detail, control, breakers, events.

Control requests go to the actor's parent supervisor (OTP's dynamic-children
API: terminate_child / restart_child / breaker). Every control request is
appended to the audit table — who, what, which path, how it ended — whether it
succeeded or not.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from supervisor import (
    ActorStopped,
    AskTimeout,
    BreakerAction,
    ChildError,
    ChildNotFound,
    StartFailed,
)

from ._audit import audited
from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound, Unavailable
from ._routing import Auth, Param, endpoint, path_param, state, to_json
from ._validate import choice, json_object, query_limit

bp = Blueprint("supervision", __name__)

ACTIONS = ("restart", "stop", "start")
BREAKER_ACTIONS = tuple(action.value for action in BreakerAction)

path_param("action", {"type": "string", "enum": list(ACTIONS)})
path_param("breaker_action", {"type": "string", "enum": list(BREAKER_ACTIONS)})

CONTROL_TIMEOUT = 65.0
"""A stop waits for the child's shutdown grace; a start for its start timeout (runtime: 60 s)."""

PATH_BODY = {"type": "object", "required": ["path"], "properties": {"path": {"type": "string", "pattern": "^/"}}}
PATH_QUERY = (Param("path", {"type": "string", "pattern": "^/"}, "actor path, e.g. /infra/store", True),)


def snapshot_dict(snapshot: Any) -> dict:
    """A snapshot with wall-clock times (``backoff_until``, ``last_failure.at``) for humans."""
    system = state().node.system
    data = to_json(snapshot)

    def wall(node: dict) -> dict:
        if node.get("backoff_until") is not None:
            node["backoff_until"] = system.wall_time(node["backoff_until"])
        if node.get("last_failure"):
            node["last_failure"]["at"] = system.wall_time(node["last_failure"]["at"])
        node["children"] = [wall(child) for child in node["children"]]
        return node

    return wall(data)


def _actor_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 512:
        raise BadRequest("path must be an actor path starting with /", "path")
    return value.rstrip("/") or "/"


def _find(path: str) -> Any:
    found = state().node.system.tree().find(path)
    if found is None:
        raise NotFound(f"no actor at {path!r}", "path")
    return found


@endpoint(bp, "GET", "/supervision/tree", summary="The whole supervision tree", auth=Auth.ADMIN)
async def tree(who: Principal):
    return snapshot_dict(state().node.system.tree())


@endpoint(bp, "GET", "/supervision/actor", summary="One actor: state, restarts, last failure, breaker, mailbox, "
          "uptime, children", auth=Auth.ADMIN, query=PATH_QUERY)
async def actor(who: Principal):
    return snapshot_dict(_find(_actor_path(request.args.get("path"))))


def _parent(path: str) -> tuple[Any, str]:
    if path == "/":
        raise BadRequest("the root supervisor has no parent to control it; stop the daemon instead", "path")
    parent_path, _, child_id = path.rpartition("/")
    _find(path)
    try:
        return state().node.system.supervisor(parent_path or "/"), child_id
    except ChildNotFound:
        raise NotFound(f"no supervisor above {path!r}", "path") from None


async def _control(call: Any) -> Any:
    try:
        return await call()
    except ChildNotFound as error:
        raise NotFound(str(error), "path") from None
    except (ChildError, StartFailed) as error:
        raise Conflict(f"{type(error).__name__}: {error}", "path") from None
    except (AskTimeout, ActorStopped) as error:
        raise Unavailable(f"the supervisor did not answer: {type(error).__name__}") from None


@endpoint(bp, "POST", "/supervision/actor/{action}", summary="Restart, stop or start an actor (audited)",
          auth=Auth.ADMIN, body=PATH_BODY)
async def control(who: Principal, action: str):
    choice(action, "action", ACTIONS)
    path = _actor_path((await json_object()).get("path"))

    async def run() -> Any:
        parent, child_id = _parent(path)
        if action in ("stop", "restart"):
            await _control(lambda: parent.terminate_child(child_id, CONTROL_TIMEOUT))
        if action in ("start", "restart"):
            await _control(lambda: parent.restart_child(child_id, CONTROL_TIMEOUT))
        return None

    await audited(who, action, path, run())
    return snapshot_dict(_find(path))


@endpoint(bp, "POST", "/supervision/breaker/{breaker_action}",
          summary="Reset, force open or force close an actor's circuit breaker (audited)",
          auth=Auth.ADMIN, body=PATH_BODY)
async def breaker(who: Principal, breaker_action: str):
    choice(breaker_action, "breaker_action", BREAKER_ACTIONS)
    path = _actor_path((await json_object()).get("path"))

    async def run() -> Any:
        parent, child_id = _parent(path)
        return await _control(lambda: parent.breaker(child_id, BreakerAction(breaker_action)))

    mode = await audited(who, f"breaker_{breaker_action}", path, run())
    return {"path": path, "breaker": str(mode.value if hasattr(mode, "value") else mode)}


@endpoint(bp, "GET", "/supervision/pools", summary="Session pool, restart limiter, upstream gate, status board "
          "and store statistics", auth=Auth.ADMIN)
async def pools(who: Principal):
    node = state().node
    return {
        "sessions": node.deps.pool.statistics(),
        "limiter": node.limiter.statistics(),
        "upstream": node.deps.upstream.statistics(),
        "board": node.board.statistics(),
        "store": node.store.statistics(),
    }


@endpoint(bp, "GET", "/supervision/events", summary="Recent lifecycle events, newest last", auth=Auth.ADMIN,
          query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                 Param("prefix", {"type": "string"}, "only paths starting with this")))
async def events(who: Principal):
    limit, prefix = query_limit(), request.args.get("prefix", "")
    system = state().node.system
    chosen = [event for event in system.history() if event.path.startswith(prefix)][-limit:]
    return [{**event.to_dict(), "at": system.wall_time(event.at)} for event in chosen]


@endpoint(bp, "GET", "/supervision/audit", summary="Audit entries of admin actions, newest first",
          auth=Auth.ADMIN, query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                                  Param("target", {"type": "string"})))
async def audit(who: Principal):
    return await state().node.store.list_audit(target=request.args.get("target") or None, limit=query_limit())
