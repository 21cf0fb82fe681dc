"""The retry schedule under MockClock, and the feeds (status board → events, notifications → hub).

The POST here is an in-process function standing in for the network (the real round trips are in
test_delivery.py); the store is real (SQLite) and keeps time with trio's clock. SQLite works in a
thread, and while trio waits for it the mock clock may jump to the next deadline: the store's own
write timeout is therefore lifted (:data:`NO_TIMEOUT`), and the schedule is checked where it is
exact — each row's ``next_attempt_at`` against the time of the failed POST — while the moment the
dispatcher picks a due row up is only bounded below.
"""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from actors.hub import Hub
from actors.sessions import SessionStatus, StatusBoard
from actors.store import JobStatus, Queue, SqliteBackend, open_store
from actors.webhooks import Webhooks

from .conftest import prepare


#: Store write timeout for these tests: virtual time jumps during SQLite's thread hops.
NO_TIMEOUT = 1e9


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


class Script:
    """Answers statuses in order (then 200) and notes the trio time of each POST."""

    def __init__(self, *statuses: int):
        self.statuses = list(statuses)
        self.calls: list[tuple[float, dict]] = []

    async def __call__(self, url, body, headers):
        self.calls.append((trio.current_time(), json.loads(body)))
        return self.statuses.pop(0) if self.statuses else 200


async def test_backoff_doubles_from_backoff_initial_then_dead(autojump_clock, db_path):
    post = Script(500, 500, 500)
    async with open_store(SqliteBackend(db_path), clock=trio.current_time, default_timeout=NO_TIMEOUT) as store:
        await prepare(store, "http://receiver.invalid/hook")
        service = Webhooks(store, backoff_initial=5.0, poster=post)
        schedule = []
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            service.emit("acme", "connection.update", {})
            with trio.fail_after(600):  # virtual seconds
                while True:
                    jobs = await store.list_jobs(Queue.WEBHOOKS)
                    if jobs and jobs[0].status is JobStatus.QUEUED and jobs[0].attempts > len(schedule):
                        schedule.append(jobs[0].next_attempt_at - post.calls[-1][0])
                    if jobs and jobs[0].status is JobStatus.DEAD:
                        break
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert schedule == pytest.approx([5.0, 10.0], abs=1e-9)  # due exactly backoff_initial * 2**(attempt-1) after each failure
    (t1, _), (t2, _), (t3, _) = post.calls
    assert t2 - t1 >= 5.0 and t3 - t2 >= 10.0  # never early (see the module docstring for late)
    assert [body["attempt"] for _, body in post.calls] == [1, 2, 3]
    assert (jobs[0].attempts, jobs[0].last_error) == (3, "HTTP 500")


async def test_status_changes_become_webhook_events_and_admin_notifications(autojump_clock, db_path):
    post = Script()
    board = StatusBoard(debounce=1.0)
    hub = Hub(board=None)
    async with open_store(SqliteBackend(db_path), clock=trio.current_time, default_timeout=NO_TIMEOUT) as store:
        await prepare(store, "http://receiver.invalid/hook", ["*"])
        service = Webhooks(store, poster=post, board=board, hub=hub)
        admin = hub.connect("acme", "1", "admin")
        hub.join(admin, "notifications")
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            board.set("s1", "acme", SessionStatus.CONNECTED)
            board.set("s1", "acme", SessionStatus.FAILED, "circuit breaker open")
            hub.emit("acme", "ticket.closed", {"ticket_id": 4})  # the flows' hook reaches webhooks too
            with trio.fail_after(600):  # virtual seconds; SQLite's thread hops let the clock jump
                while len(post.calls) < 5:
                    await trio.sleep(0.5)
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
