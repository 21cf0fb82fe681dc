"""The media supervisor (``/services/media``): a dispatcher plus one actor per running download.

The :class:`MediaDispatcher` claims due jobs from the store — never more than
``media.concurrency`` running at once — and starts a temporary :class:`MediaJobActor` child of
the media supervisor for each. It wakes when the inbound flow stored a message with media, when
a job finished, on queue administration, and every ``POLL`` seconds for retries coming due.
At start, jobs left ``running`` by a dead process are queued again; while running, jobs whose actor
vanished without recording an outcome are taken back after STALE_AFTER.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import trio

from actors.flows import QueueAdmin, answer_admin
from actors.store import Queue
from supervisor import Actor, ActorStopped, ChildSpec, Restart, Supervisor

from ._job import DOWNLOAD_TIMEOUT, MediaDeps, MediaJobActor

_LOG = logging.getLogger("zapvisor.media")

POLL = 1.0
"""Seconds between looks for due retries when nothing woke the dispatcher."""

DISPATCHER = "dispatcher"

STALE_CHECK = 60.0
"""How often the dispatcher takes back jobs whose actor vanished without recording an outcome."""

STALE_AFTER = 2 * DOWNLOAD_TIMEOUT
"""A job ``running`` this long has no live actor (a download is bounded by DOWNLOAD_TIMEOUT)."""

JOB_SHUTDOWN = 5.0
"""Grace for a download on shutdown; an interrupted one stays ``running`` and is re-queued at start."""


def media_supervisor(deps: MediaDeps) -> Supervisor:
    """The ``/services/media`` subtree: the dispatcher, then the dynamic job actors."""
    return Supervisor([ChildSpec(DISPATCHER, lambda: MediaDispatcher(deps))], intensity=5, period=30.0)


class MediaDispatcher(Actor):
    """See the module docstring; also answers the queue administration messages for media jobs."""

    def __init__(self, deps: MediaDeps) -> None:
        self.deps = deps

    async def on_start(self) -> None:
        recovered = await self.deps.store.recover_running(Queue.MEDIA)
        if recovered:
            _LOG.info("media: %d downloads interrupted by the last stop taken back (queued again, or "
                      "quarantined at their third interruption)", recovered)
        self.ctx.nursery.start_soon(self._dispatch_jobs)

    async def receive(self, message: Any) -> Any:
        match message:
            case QueueAdmin():
                reply = await answer_admin(self.deps.store, Queue.MEDIA, message)
                self.deps.wake.set()
                return reply
        raise TypeError(f"media dispatcher got an unknown message {message!r}")

    async def _dispatch_jobs(self) -> None:
        supervisor_path = self.ctx.path.rsplit("/", 1)[0]
        supervisor = self.ctx.system.supervisor(supervisor_path)
        next_stale_check = trio.current_time() + STALE_CHECK
        while True:
            store, gate = self.deps.store, self.deps.store_gate  # a store outage: wait at the gate, not crash
            if trio.current_time() >= next_stale_check:
                await gate.call(functools.partial(store.recover_running, Queue.MEDIA, stale_after=STALE_AFTER))
                next_stale_check = trio.current_time() + STALE_CHECK
            running = supervisor.count_children().active - 1  # minus the dispatcher itself
            free = self.deps.concurrency - running
            jobs = await gate.call(functools.partial(store.claim_jobs, Queue.MEDIA, limit=free)) if free > 0 else []
            for job in jobs:
                spec = ChildSpec(f"job-{job.id}", lambda job=job: MediaJobActor(job, self.deps),
                                 restart=Restart.TEMPORARY, shutdown=JOB_SHUTDOWN)
                try:
                    await supervisor.start_child(spec)
                except ActorStopped:
                    return  # the media supervisor is stopping
            # claimed all that was due, or every slot is busy: wait for news (a set wake returns at once)
            await self.deps.wake.wait(POLL)
