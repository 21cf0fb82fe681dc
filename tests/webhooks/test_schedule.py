"""The retry schedule, and the feeds (status board -> events, notifications -> the hub).

The POST here is an in-process function standing in for the network (the real round trips are in
test_delivery.py); the store is real (SQLite). These run on the real clock with a short
``backoff_initial``: the store works in a thread, and a mock clock jumps while trio waits for it.
The schedule is still checked where it is decided — the ``retry_at`` of each failure against the
store clock read at that failure (microseconds later) — and the actual retries are bounded below.
"""

from __future__ import annotations

import json

import pytest
import trio

from actors.hub import Hub
from actors.sessions import SessionStatus, StatusBoard
from actors.store import JobStatus, Queue, SqliteBackend, open_store
from actors.webhooks import Webhooks

from .conftest import prepare

#: Short real-time backoff (the production default is 5 s; only the factor matters here).
BACKOFF = 0.1

#: Real seconds a test may wait for the service: generous, the machine is shared.
PATIENCE = 20.0


class Script:
    """Answers statuses in order (then 200) and notes the trio time of each POST."""

    def __init__(self, *statuses: int):
        self.statuses = list(statuses)
        self.calls: list[tuple[float, dict]] = []

    async def __call__(self, url, body, headers):
        self.calls.append((trio.current_time(), json.loads(body)))
        return self.statuses.pop(0) if self.statuses else 200


class RecordingStore:
    """The real store, noting each ``job_failed`` with the store clock at the call (the failed
    POST happened at that same instant: no await in between). A failure is noted once the store
    has written it, so a test that saw the third one reads the job as the store left it."""

    def __init__(self, store):
        self._store = store
        self.failures: list[tuple[float, float | None]] = []

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def job_failed(self, queue, job_id, error, *, retry_at):
        called_at = self._store.clock()
        written = await self._store.job_failed(queue, job_id, error, retry_at=retry_at)
        self.failures.append((called_at, retry_at))
        return written


async def test_backoff_doubles_from_backoff_initial_then_dead(db_path):
    post = Script(500, 500, 500)
    async with open_store(SqliteBackend(db_path), clock=trio.current_time) as real:
        await prepare(real, "http://receiver.invalid/hook")
        store = RecordingStore(real)
        service = Webhooks(store, backoff_initial=BACKOFF, poster=post, poll_interval=0.05)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            service.emit("acme", "connection.update", {})
            with trio.fail_after(PATIENCE):
                while len(store.failures) < 3:
                    await trio.sleep(0.02)
            (job,) = await real.list_jobs(Queue.WEBHOOKS)
            nursery.cancel_scope.cancel()
    delays = [None if retry_at is None else retry_at - at for at, retry_at in store.failures]
    assert delays[:2] == pytest.approx([BACKOFF, 2 * BACKOFF], abs=1e-3)  # backoff_initial * 2**(attempt-1)
    assert delays[2] is None  # the third failure is the last: dead letter
    (t1, _), (t2, _), (t3, _) = post.calls
    assert t2 - t1 >= BACKOFF and t3 - t2 >= 2 * BACKOFF  # never early
    assert [body["attempt"] for _, body in post.calls] == [1, 2, 3]
    assert (job.status, job.attempts, job.last_error) == (JobStatus.DEAD, 3, "HTTP 500")


async def test_status_changes_become_webhook_events_and_admin_notifications(db_path):
    post = Script()
    board = StatusBoard(debounce=1.0)
    hub = Hub(board=None)
    async with open_store(SqliteBackend(db_path), clock=trio.current_time) as store:
        await prepare(store, "http://receiver.invalid/hook", ["*"])
        service = Webhooks(store, poster=post, board=board, hub=hub, poll_interval=0.05)
        admin = hub.connect("acme", "1", "admin")
        hub.join(admin, "notifications")
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            board.set("s1", "acme", SessionStatus.CONNECTED)
            board.set("s1", "acme", SessionStatus.FAILED, "circuit breaker open")
            hub.emit("acme", "ticket.closed", {"ticket_id": 4})  # the flows' hook reaches webhooks too
            with trio.fail_after(PATIENCE):
                while len(post.calls) < 5:
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    events = [body["event"] for _, body in post.calls]
    assert sorted(events) == sorted(  # deliveries run concurrently: no order across events
        ["connection.update", "connection.update", "status.instance", "reconnect.failed", "ticket.closed"])
    frames = []
    while admin.depth:
        frames.append(json.loads(await admin.receive()))
    note = frames[-1]
    assert (note["type"], note["room"]) == ("notification.high", "notifications")
    assert (note["payload"]["eventType"], note["payload"]["instanceName"]) == ("RECONNECT_FAILED", "s1")


async def test_events_nobody_wants_are_dropped_at_emit_and_families_are_wanted(db_path):
    """A tenant whose subscriptions are cached and want nothing of an event costs no queueing;
    ``ticket.*`` takes every ticket event (the flows emit ticket.created / ticket.updated)."""
    post = Script()
    async with open_store(SqliteBackend(db_path), clock=trio.current_time) as store:
        await prepare(store, "http://receiver.invalid/hook", ["ticket.*"])
        service = Webhooks(store, poster=post, poll_interval=0.05)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            service.emit("acme", "ticket.created", {"ticket_id": 1})
            with trio.fail_after(PATIENCE):
                while not post.calls:
                    await trio.sleep(0.02)
            for _ in range(3):  # the subscriptions are cached now: decided at emit
                service.emit("acme", "message.created", {"id": 7})
            assert service.statistics()["unsubscribed"] == 3
            service.emit("acme", "ticket.updated", {"ticket_id": 1})
            with trio.fail_after(PATIENCE):
                while len(post.calls) < 2:
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    assert [body["event"] for _, body in post.calls] == ["ticket.created", "ticket.updated"]
