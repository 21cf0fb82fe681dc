"""The persistent job queues (admin): list by state, retry / remove a job, clean, pause / resume.

Queue names in URLs: ``outbox``, ``media``, ``webhooks`` (the store's outbox,
media_jobs and webhook_deliveries tables). Every change is audited.
"""

from __future__ import annotations

from quart import Blueprint, request

from actors.store import JobStatus, Queue

from ._auth import Principal
from ._errors import Conflict, NotFound
from ._routing import Auth, Param, endpoint, path_param, state
from ._validate import MAX_LIMIT, boolean, choice, identifier, number, optional_json_object, query_limit

bp = Blueprint("queues", __name__)

QUEUES = {"outbox": Queue.OUTBOX, "media": Queue.MEDIA, "webhooks": Queue.WEBHOOKS}
STATES = tuple(status.value for status in JobStatus)

path_param("queue", {"type": "string", "enum": list(QUEUES)})
path_param("job_id", {"type": "integer", "minimum": 1})

CLEAN_BODY = {"type": "object", "properties": {"older_than": {"type": "number", "minimum": 0},
                                                "include_dead": {"type": "boolean"}}}
PAUSE_BODY = {"type": "object", "properties": {"session_id": {"type": "string"}}}


def _queue(name: str) -> Queue:
    return QUEUES[choice(name, "queue", tuple(QUEUES))]


async def _audit(who: Principal, action: str, target: str, result: str) -> None:
    await state().node.store.append_audit(who.name, action, target, result)


@endpoint(bp, "GET", "/queues", summary="Every queue with its pause state and job counts by state "
          f"(each count capped at {MAX_LIMIT})", auth=Auth.ADMIN)
async def list_queues(who: Principal):
    store = state().node.store
    out = {}
    for name, queue in QUEUES.items():
        paused = await store.paused(queue)
        counts = {s: len(await store.list_jobs(queue, JobStatus(s), limit=MAX_LIMIT)) for s in STATES}
        out[name] = {"paused": "" in paused, "paused_sessions": sorted(paused - {""}), "jobs": counts}
    return out


@endpoint(bp, "GET", "/queues/{queue}/jobs", summary="A queue's jobs, oldest first", auth=Auth.ADMIN,
          query=(Param("state", {"type": "string", "enum": list(STATES)}),
                 Param("tenant_id", {"type": "string"}),
                 Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})))
async def list_jobs(who: Principal, queue: str):
    q = _queue(queue)
    status = request.args.get("state")
    status = None if status is None else JobStatus(choice(status, "state", STATES))
    tenant = request.args.get("tenant_id")
    tenant = None if tenant is None else identifier(tenant, "tenant_id")
    return await state().node.store.list_jobs(q, status, tenant_id=tenant, limit=query_limit())


@endpoint(bp, "POST", "/queues/{queue}/jobs/{job_id}/retry", summary="Run a dead or waiting job again now",
          auth=Auth.ADMIN)
async def retry_job(who: Principal, queue: str, job_id: int):
    q = _queue(queue)
    store = state().node.store
    if await store.get_job(q, job_id) is None:
        raise NotFound(f"no job {job_id} in {queue}", "job_id")
    job = await store.retry_job(q, job_id)
    await _audit(who, "retry_job", f"{queue}/{job_id}", "ok")
    return job


@endpoint(bp, "DELETE", "/queues/{queue}/jobs/{job_id}", summary="Remove a job that is not running",
          auth=Auth.ADMIN)
async def remove_job(who: Principal, queue: str, job_id: int):
    q = _queue(queue)
    store = state().node.store
    if await store.get_job(q, job_id) is None:
        raise NotFound(f"no job {job_id} in {queue}", "job_id")
    if not await store.remove_job(q, job_id):
        await _audit(who, "remove_job", f"{queue}/{job_id}", "refused: running")
        raise Conflict(f"job {job_id} is running; retry once it finishes", "job_id")
    await _audit(who, "remove_job", f"{queue}/{job_id}", "ok")
    return None


@endpoint(bp, "POST", "/queues/{queue}/clean", summary="Delete finished jobs older than older_than seconds",
          auth=Auth.ADMIN, body=CLEAN_BODY)
async def clean(who: Principal, queue: str):
    q = _queue(queue)
    body = await optional_json_object()
    older_than = number(body.get("older_than", 86400.0), "older_than")
    include_dead = boolean(body, "include_dead")
    removed = await state().node.store.clean_jobs(q, older_than=older_than, include_dead=include_dead)
    await _audit(who, "clean_queue", queue, f"removed {removed}")
    return {"queue": queue, "removed": removed}


async def _pause(who: Principal, queue: str, paused: bool) -> dict:
    q = _queue(queue)
    body = await optional_json_object()
    session = body.get("session_id")
    if session is not None:
        identifier(session, "session_id")
        if q is not Queue.OUTBOX:
            raise Conflict("only the outbox can be paused per session", "session_id")
    changed = await state().node.store.set_paused(q, paused, session_id=session)
    target = queue if session is None else f"{queue}/{session}"
    await _audit(who, "pause_queue" if paused else "resume_queue", target, "ok" if changed else "unchanged")
    return {"queue": queue, "session_id": session, "paused": paused, "changed": changed}


@endpoint(bp, "POST", "/queues/{queue}/pause", summary="Pause a queue (or one session's outbox)",
          auth=Auth.ADMIN, body=PAUSE_BODY)
async def pause(who: Principal, queue: str):
    return await _pause(who, queue, True)


@endpoint(bp, "POST", "/queues/{queue}/resume", summary="Resume a queue (or one session's outbox)",
          auth=Auth.ADMIN, body=PAUSE_BODY)
async def resume(who: Principal, queue: str):
    return await _pause(who, queue, False)
