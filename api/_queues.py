"""The persistent job queues (admin): list by state, retry / remove a job, clean, pause / resume.

Queue names in URLs: ``outbox``, ``media``, ``webhooks`` (the store's outbox,
media_jobs and webhook_deliveries tables). Requests are the flows' queue administration
messages (:mod:`actors.flows`), asked of the service that owns the queue, so a resume or a
retry also wakes its workers. Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from quart import Blueprint

from actors.flows import (
    CleanJobs,
    ListJobs,
    PauseQueue,
    QueueAdmin,
    QueueRefused,
    QueueStatus,
    RemoveJob,
    ResumeQueue,
    RetryJob,
    answer_admin,
)
from actors.store import JobStatus, Queue
from supervisor import ActorFailed, ActorStopped, AskTimeout, ChildNotFound

from ._audit import audited, record
from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound, Unavailable
from ._routing import Auth, endpoint, path_param, state
from ._validate import MAX_LIMIT, Body, Id, Identifier, Limit, Query

bp = Blueprint("queues", __name__)

QUEUES = {"outbox": Queue.OUTBOX, "media": Queue.MEDIA, "webhooks": Queue.WEBHOOKS}
STATES = tuple(status.value for status in JobStatus)

path_param("queue", Literal[tuple(QUEUES)])
path_param("job_id", Id)

MAX_AGE = 10 * 365 * 86400.0
"""Largest ``older_than`` (ten years): anything beyond it is every finished job anyway."""


class CleanBody(Body):
    older_than: Annotated[float, Field(ge=0, le=MAX_AGE, description="seconds; default one day")] = 86400.0
    include_dead: bool = False


class PauseBody(Body):
    session_id: Annotated[Identifier, Field(description="only this session's outbox")] = None


class JobsQuery(Query):
    state: Literal[STATES] = None
    tenant_id: Identifier = None
    limit: Limit = 100


ADMIN_TIMEOUT = 30.0
"""A queue administration request is one store write (clean: one DELETE), well within this."""

SERVICES = {"outbox": "/services/outbox"}
"""The service answering a queue's administration messages (it also wakes its senders on resume/retry).
Media jobs and webhook deliveries are answered from the store directly: their workers poll the queue."""


def _queue(name: str) -> Queue:
    return QUEUES[name]  # the path parameter is validated against QUEUES


async def _admin(name: str, message: QueueAdmin, field: str | None = None) -> Any:
    """Ask the queue's service; when it is not part of this node, answer from the store directly."""
    queue = _queue(name)
    node = state().node
    try:
        ref = node.system.ref(SERVICES[name]) if name in SERVICES else None
    except ChildNotFound:
        ref = None
    if ref is None:
        reply = await answer_admin(node.store, queue, message)
    else:
        try:
            reply = await ref.ask(message, timeout=ADMIN_TIMEOUT)
        except (AskTimeout, ActorStopped, ActorFailed) as error:
            raise Unavailable(f"the {name} service did not answer: {type(error).__name__}") from None
    if isinstance(reply, QueueRefused):
        error = {"not_found": NotFound, "conflict": Conflict}.get(reply.code, BadRequest)
        raise error(reply.message, field)
    return reply


@endpoint(bp, "GET", "/queues", summary="Every queue with its pause state and job counts by state "
          f"(each count capped at {MAX_LIMIT})", auth=Auth.ADMIN)
async def list_queues(who: Principal):
    out = {}
    for name in QUEUES:
        info = await _admin(name, QueueStatus())
        counts = {s: len(await _admin(name, ListJobs(JobStatus(s), None, MAX_LIMIT))) for s in STATES}
        out[name] = {"paused": info.paused, "paused_sessions": list(info.paused_sessions), "jobs": counts}
    return out


@endpoint(bp, "GET", "/queues/{queue}/jobs", summary="A queue's jobs, oldest first", auth=Auth.ADMIN,
          query=JobsQuery)
async def list_jobs(who: Principal, queue: str, query: JobsQuery):
    status = None if query.state is None else JobStatus(query.state)
    return await _admin(queue, ListJobs(status, query.tenant_id, query.limit))


@endpoint(bp, "POST", "/queues/{queue}/jobs/{job_id}/retry",
          summary="Run a dead or waiting job again now (outbox: also an unknown-outcome send, deliberately "
                  "sent again)", auth=Auth.ADMIN)
async def retry_job(who: Principal, queue: str, job_id: int):
    return await audited(who, "retry_job", f"{queue}/{job_id}", _admin(queue, RetryJob(job_id), "job_id"))


@endpoint(bp, "DELETE", "/queues/{queue}/jobs/{job_id}", summary="Remove a job that is not running",
          auth=Auth.ADMIN)
async def remove_job(who: Principal, queue: str, job_id: int):
    await audited(who, "remove_job", f"{queue}/{job_id}", _admin(queue, RemoveJob(job_id), "job_id"))
    return None


@endpoint(bp, "POST", "/queues/{queue}/clean", summary="Delete finished jobs older than older_than seconds",
          auth=Auth.ADMIN, body=CleanBody)
async def clean(who: Principal, queue: str, body: CleanBody):
    removed = await _admin(queue, CleanJobs(body.older_than, body.include_dead))
    await record(who, "clean_queue", queue, f"removed {removed}")
    return {"queue": queue, "removed": removed}


async def _pause(who: Principal, queue: str, paused: bool, body: PauseBody) -> dict:
    q = _queue(queue)
    session = body.session_id
    if session is not None:
        if q is not Queue.OUTBOX:
            raise Conflict("only the outbox can be paused per session", "session_id")
    if session is None:
        changed = await _admin(queue, PauseQueue() if paused else ResumeQueue())
    else:  # per-session pauses are the store's (the outbox reads them on every claim)
        changed = await state().node.store.set_paused(q, paused, session_id=session)
    target = queue if session is None else f"{queue}/{session}"
    await record(who, "pause_queue" if paused else "resume_queue", target, "ok" if changed else "unchanged")
    return {"queue": queue, "session_id": session, "paused": paused, "changed": changed}


@endpoint(bp, "POST", "/queues/{queue}/pause", summary="Pause a queue (or one session's outbox)",
          auth=Auth.ADMIN, body=PauseBody)
async def pause(who: Principal, queue: str, body: PauseBody):
    return await _pause(who, queue, True, body)


@endpoint(bp, "POST", "/queues/{queue}/resume", summary="Resume a queue (or one session's outbox)",
          auth=Auth.ADMIN, body=PauseBody)
async def resume(who: Principal, queue: str, body: PauseBody):
    return await _pause(who, queue, False, body)
