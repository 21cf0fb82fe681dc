"""Queue administration as messages (seed 000 ``queue.ts``: getJob(s), remove, clean, pause, resume).

The outbox, media and webhook services each answer these for their own queue by calling
:func:`answer_admin` from their ``receive``. Replies are values: the job(s), a count, a flag,
or :class:`QueueRefused` naming the problem. A paused queue keeps accepting jobs; it just
hands none out until resumed.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.store import Conflict, InvalidInput, JobStatus, NotFound, Queue, Store


@attrs.frozen
class QueueAdmin:
    """Base of the administration messages (``isinstance`` routes them to :func:`answer_admin`)."""


@attrs.frozen
class ListJobs(QueueAdmin):
    """Reply: the jobs, oldest first (``status`` dead = the dead letters)."""

    status: JobStatus | None = None
    tenant_id: str | None = None
    limit: int = 100


@attrs.frozen
class GetJob(QueueAdmin):
    """Reply: the job, or QueueRefused(not_found)."""

    job_id: int


@attrs.frozen
class RetryJob(QueueAdmin):
    """Run a dead or waiting job again now with a fresh attempt count. Reply: the job."""

    job_id: int


@attrs.frozen
class RemoveJob(QueueAdmin):
    """Delete a job that is not running. Reply: True, or QueueRefused."""

    job_id: int


@attrs.frozen
class CleanJobs(QueueAdmin):
    """Delete finished jobs older than ``older_than`` seconds (dead ones too when asked). Reply: count."""

    older_than: float
    include_dead: bool = False


@attrs.frozen
class PauseQueue(QueueAdmin):
    """Stop handing out jobs (new ones are still accepted). Reply: True if it changed."""


@attrs.frozen
class ResumeQueue(QueueAdmin):
    """Hand out jobs again. Reply: True if it changed."""


@attrs.frozen
class QueueStatus(QueueAdmin):
    """Reply: :class:`QueueInfo`."""


@attrs.frozen
class QueueInfo:
    queue: Queue
    paused: bool
    paused_sessions: tuple[str, ...]  # outbox only: sessions whose sends wait


@attrs.frozen
class QueueRefused:
    """Why an administration request was not carried out: ``code`` is not_found | conflict | invalid."""

    code: str
    message: str


async def answer_admin(store: Store, queue: Queue, message: QueueAdmin) -> Any:
    """Carry out one administration message on ``queue``; refusals come back as values.

    Raises what the store raises when it is unavailable (StoreUnavailable): that is a failure
    of the service, not of the request.
    """
    try:
        match message:
            case ListJobs(status, tenant_id, limit):
                return await store.list_jobs(queue, status, tenant_id=tenant_id, limit=limit)
            case GetJob(job_id):
                job = await store.get_job(queue, job_id)
                return job if job is not None else QueueRefused("not_found", f"{queue} job {job_id} does not exist")
            case RetryJob(job_id):
                return await store.retry_job(queue, job_id)
            case RemoveJob(job_id):
                if await store.remove_job(queue, job_id):
                    return True
                exists = await store.get_job(queue, job_id) is not None
                return QueueRefused("conflict" if exists else "not_found",
                                    f"{queue} job {job_id} is running" if exists else f"{queue} job {job_id} does not exist")
            case CleanJobs(older_than, include_dead):
                return await store.clean_jobs(queue, older_than=older_than, include_dead=include_dead)
            case PauseQueue():
                return await store.set_paused(queue, True)
            case ResumeQueue():
                return await store.set_paused(queue, False)
            case QueueStatus():
                scopes = await store.paused(queue)
                return QueueInfo(queue, "" in scopes, tuple(sorted(s for s in scopes if s)))
    except NotFound as exc:
        return QueueRefused("not_found", str(exc))
    except Conflict as exc:
        return QueueRefused("conflict", str(exc))
    except (InvalidInput, ValueError) as exc:
        return QueueRefused("invalid", str(exc))
    raise TypeError(f"not a queue administration message: {message!r}")
