"""The :class:`MediaJobActor`: one media download, from claim to stored file (or dead letter).

Steps: read where the file is (the job's ``source``, written with the message); refuse a
declared size above ``media.max_bytes`` before downloading; download through the owning
SessionActor (``DownloadMedia``); check the real size; detect the type from the bytes; write
``media_dir/<tenant>/<yyyy>/<mm>/<message id>.<ext>`` atomically (no temp file survives a
failure); record it on the job and the message; publish ``message.updated``.

Failures that a retry can fix (session not connected, timeouts, a disk that refused the file)
go back to the queue with exponential backoff until ``media.attempts`` claims were made; the
others (too large, gone from WhatsApp, an unreadable source) are dead letters at once. The
actor then ends normally.

Item isolation (DESIGN §10): anything else the job's content makes fail (a corrupt row, a reply
of the wrong shape...) quarantines the job — dead at once, ``last_error`` starting with
``quarantined:`` — and the actor still ends normally; only an unreachable store fails it (the job
then stays ``running`` and is taken back later; taken back three times, the store quarantines it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import attrs
import trio

from actors.drivers import MediaKind, MediaRef
from actors.flows import MESSAGE_UPDATED, Publisher, Wakeup, message_payload, no_publisher
from actors.sessions import DownloadMedia, RequestFailed, UpstreamGate, store_gate
from actors.store import QUARANTINED, Conflict, MediaJob, Queue, Store, StoreClosed, StoreUnavailable, storable_text
from supervisor import Actor, ActorFailed, ActorStopped, AskTimeout, ChildNotFound, Shutdown

from ._errors import PermanentMediaError
from ._files import detect_extension, relative_path, write_atomically

_LOG = logging.getLogger("zapvisor.media")

RETRY_BASE = 2.0
"""First retry delay of a failed download (x2 per attempt): rides out a reconnect."""

DOWNLOAD_TIMEOUT = 120.0
"""Seconds one download may take through the session (a 100 MB document on a slow link)."""

_PERMANENT_DRIVER_ERRORS = frozenset({"MediaNotFoundError"})
"""Driver errors a retry cannot fix: the file is gone from WhatsApp's servers."""

MAX_ERROR_CHARS = 2000
"""A quarantined job's recorded error is cut to this (an exception's message may quote the content)."""


@attrs.define(eq=False)
class MediaDeps:
    store: Store
    media_dir: Path
    max_bytes: int
    concurrency: int
    attempts: int
    publisher: Publisher = no_publisher
    wake: Wakeup = attrs.field(factory=Wakeup)  # set when new jobs may be due (inbound media, admin)
    retry_base: float = RETRY_BASE
    store_gate: UpstreamGate = attrs.field(factory=store_gate)  # the node's: claims wait there during an outage


def parse_source(job: MediaJob) -> tuple[str, MediaRef]:
    """(session id, media reference) from a job's source. Raises PermanentMediaError if unreadable."""
    try:
        source = json.loads(job.source or "")
        ref = MediaRef(ref=source["ref"], kind=MediaKind(source["kind"]), mimetype=source["mimetype"],
                       size=source.get("size"), file_name=source.get("file_name"), sha256=source.get("sha256"))
        return source["session_id"], ref
    except (ValueError, KeyError, TypeError) as exc:
        raise PermanentMediaError(f"media job {job.id} has no usable source: {exc}") from exc


class MediaJobActor(Actor):
    """See the module docstring. Ends with Shutdown once the job is recorded either way."""

    def __init__(self, job: MediaJob, deps: MediaDeps) -> None:
        self.job = job
        self.deps = deps

    async def on_start(self) -> None:
        self.ctx.nursery.start_soon(self._work)

    async def _work(self) -> None:
        try:
            path = await self._download_and_store()
        except PermanentMediaError as exc:
            await self._failed(str(exc), permanent=True)
        except _Transient as exc:
            await self._failed(str(exc), permanent=False)
        except (StoreUnavailable, StoreClosed):
            raise  # the store is down, no fault of the job's
        except Exception as exc:  # the item boundary (see the module docstring)
            error = storable_text(f"{QUARANTINED}: {type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]
            _LOG.error("media job %s quarantined: %s", self.job.id, error)
            await self._failed(error, permanent=True)
        else:
            await self._done(path)
        self.deps.wake.set()  # a slot is free
        raise Shutdown(f"media job {self.job.id} finished")

    async def _download_and_store(self) -> str:
        job, deps = self.job, self.deps
        session_id, ref = parse_source(job)
        if ref.size is not None and ref.size > deps.max_bytes:
            raise PermanentMediaError(f"declared size {ref.size} bytes exceeds media.max_bytes ({deps.max_bytes})")
        path = f"/tenants/{job.tenant_id}/sessions/{session_id}"
        try:
            reply = await self.ctx.system.ref(path).ask(DownloadMedia(ref), DOWNLOAD_TIMEOUT)
        except (ChildNotFound, ActorStopped, AskTimeout, ActorFailed) as exc:
            raise _Transient(f"session {session_id} unavailable: {type(exc).__name__}: {exc}") from exc
        if isinstance(reply, RequestFailed):
            error = f"download failed: {reply.error_type}: {reply.message}"
            if reply.error_type in _PERMANENT_DRIVER_ERRORS:
                raise PermanentMediaError(error)
            raise _Transient(error)
        if len(reply) > deps.max_bytes:
            raise PermanentMediaError(f"file of {len(reply)} bytes exceeds media.max_bytes ({deps.max_bytes})")
        relative = relative_path(job.tenant_id, job.message_id, job.created_at, detect_extension(reply, ref.mimetype))
        try:
            await trio.to_thread.run_sync(write_atomically, deps.media_dir, relative, reply)
        except OSError as exc:  # the disk, not the job (full, read-only, missing): worth a retry
            raise _Transient(f"file not written: {type(exc).__name__}: {exc}") from exc
        return relative.as_posix()

    async def _done(self, path: str) -> None:
        store = self.deps.store
        try:
            await store.media_done(self.job.id, path)
        except Conflict:
            return  # an administrator removed or reset the job meanwhile
        message = await store.get_message_by_id(self.job.message_id)
        if message is not None:
            self.deps.publisher.emit(message.tenant_id, MESSAGE_UPDATED, message_payload(message),
                                     ticket_id=message.ticket_id)

    async def _failed(self, error: str, *, permanent: bool) -> None:
        job, deps = self.job, self.deps
        retry_at = None
        if not permanent and job.attempts < deps.attempts:
            retry_at = self.ctx.system.wall_time(trio.current_time() + deps.retry_base * 2 ** (job.attempts - 1))
        _LOG.info("media job %s attempt %d failed (%s): %s", job.id, job.attempts,
                  "retry" if retry_at else "dead letter", error)
        try:
            await deps.store.job_failed(Queue.MEDIA, job.id, error, retry_at=retry_at)
        except Conflict:
            pass


class _Transient(Exception):
    """A failed attempt worth retrying."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
