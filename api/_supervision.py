"""The supervision tree over HTTP (admin only): snapshots, actor detail, control, breakers, events.

Control requests go to the actor's parent supervisor (OTP's dynamic-children
API: terminate_child / restart_child / breaker), except a session actor's stop, start
and restart, which go to the session manager (as the sessions API's requests do): a
session stopped beneath its manager kept saying ``connected`` (to agents, to the outbox,
in its row, which restored it at the next boot). Every control request is appended to the
audit table — who, what, which path, how it ended — whether it succeeded or not.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field
from quart import Blueprint

from actors.node import RestartSession, StartSession, StopSession
from supervisor import (
    ActorStopped,
    AskTimeout,
    BreakerAction,
    ChildError,
    ChildNotFound,
    SpecError,
    StartFailed,
)

from ._audit import audited
from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound, Unavailable
from ._routing import Auth, endpoint, path_param, state, to_json
from ._runtime import runtime_stats
from ._sessions import ask_manager
from ._validate import Body, Limit, Query, text

bp = Blueprint("supervision", __name__)

ACTIONS = ("restart", "stop", "start")
BREAKER_ACTIONS = tuple(action.value for action in BreakerAction)

path_param("action", Literal[ACTIONS])
path_param("breaker_action", Literal[BREAKER_ACTIONS])

_SESSION_ACTOR = re.compile(r"/tenants/[^/]+/sessions/[^/]+")
_SESSION_REQUESTS = {"stop": StopSession, "start": StartSession, "restart": RestartSession}

CONTROL_TIMEOUT = 65.0
"""A stop waits for the child's shutdown grace; a start for its start timeout (runtime: 60 s)."""

MAX_PATH = 512
"""Longest actor path: far deeper than any tree the node builds (/tenants/<id>/sessions/<id>)."""

ActorPath = Annotated[text(MAX_PATH, pattern="^/"), Field(description="actor path, e.g. /infra/store")]


class PathBody(Body):
    path: ActorPath


class ActorQuery(Query):
    path: ActorPath


class EventsQuery(Query):
    limit: Limit = 100
    prefix: Annotated[text(MAX_PATH, pattern="^/"), Field(description="only paths starting with this")] = None


class RuntimeQuery(Query):
    objects: Annotated[int, Field(ge=0, le=200, description="also the N most numerous object types (walks "
                                  "the heap: tens of ms)")] = 0


class AuditQuery(Query):
    limit: Limit = 100
    target: text(MAX_PATH) = None


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


def _actor_path(value: str) -> str:
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
          "uptime, children", auth=Auth.ADMIN, query=ActorQuery)
async def actor(who: Principal, query: ActorQuery):
    return snapshot_dict(_find(_actor_path(query.path)))


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
          auth=Auth.ADMIN, body=PathBody)
async def control(who: Principal, action: str, body: PathBody):
    path = _actor_path(body.path)

    async def run() -> Any:
        parent, child_id = _parent(path)
        if _SESSION_ACTOR.fullmatch(path):  # its status and row follow (see the module docstring)
            await ask_manager(_SESSION_REQUESTS[action](child_id))
            return None
        if action in ("stop", "restart"):
            await _control(lambda: parent.terminate_child(child_id, CONTROL_TIMEOUT))
        if action in ("start", "restart"):
            await _control(lambda: parent.restart_child(child_id, CONTROL_TIMEOUT))
        return None

    await audited(who, action, path, run())
    return snapshot_dict(_find(path))


@endpoint(bp, "POST", "/supervision/breaker/{breaker_action}",
          summary="Reset, force open or force close an actor's circuit breaker (audited)",
          auth=Auth.ADMIN, body=PathBody)
async def breaker(who: Principal, breaker_action: str, body: PathBody):
    path = _actor_path(body.path)

    async def run() -> Any:
        parent, child_id = _parent(path)
        try:
            return await _control(lambda: parent.breaker(child_id, BreakerAction(breaker_action)))
        except SpecError as error:  # the actor exists but its spec has no breaker: nothing to act on
            raise BadRequest(str(error), "path") from None

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


@endpoint(bp, "GET", "/supervision/runtime", summary="Process figures a soak watches: RSS, fds, threads, actors, "
          "trio tasks and deadlines, asyncio tasks, optionally object counts by type", auth=Auth.ADMIN,
          query=RuntimeQuery)
async def runtime(who: Principal, query: RuntimeQuery):
    actors = sum(1 for _ in state().node.system.tree().walk())
    return runtime_stats(actors, query.objects)


@endpoint(bp, "GET", "/supervision/events", summary="Recent lifecycle events, newest last", auth=Auth.ADMIN,
          query=EventsQuery)
async def events(who: Principal, query: EventsQuery):
    limit, prefix = query.limit, query.prefix or ""
    system = state().node.system
    chosen = [event for event in system.history() if event.path.startswith(prefix)][-limit:]
    return [{**event.to_dict(), "at": system.wall_time(event.at)} for event in chosen]


@endpoint(bp, "GET", "/supervision/audit", summary="Audit entries of admin actions, newest first",
          auth=Auth.ADMIN, query=AuditQuery)
async def audit(who: Principal, query: AuditQuery):
    return await state().node.store.list_audit(target=query.target, limit=query.limit)
