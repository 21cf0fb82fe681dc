"""Deliveries over real sockets: signature, retries with backoff, dead letter and replay,
concurrency, and survival across restarts (the queue is the store's)."""

from __future__ import annotations

import json

import trio

from actors.store import JobStatus, Queue, SqliteBackend, open_store
from actors.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, Webhooks, verify

from .conftest import LOCAL_RECEIVERS, SECRET, prepare

#: Small real-time backoff so retries happen within a test; the schedule itself is exact under
#: MockClock in test_schedule.py.
BACKOFF = 0.2


async def wait_status(store, job_id: int, status: JobStatus, timeout: float = 20.0):
    with trio.fail_after(timeout):
        while (job := await store.get_job(Queue.WEBHOOKS, job_id)).status is not status:
            await trio.sleep(0.02)
    return job


async def test_fails_twice_then_succeeds_signed_with_backoff(store, receiver):
    receiver.script = [500, 503]
    await prepare(store, receiver.url, ["connection.update", "message.created"])
    service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=BACKOFF, poll_interval=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        service.emit("acme", "message.created", {"id": 7, "text": "olá"})
        await receiver.wait_calls(3)
        (job,) = await store.list_jobs(Queue.WEBHOOKS)
        job = await wait_status(store, job.id, JobStatus.DONE)
        nursery.cancel_scope.cancel()
    assert job.attempts == 3
    bodies = [json.loads(call["body"]) for call in receiver.calls]
    assert [b["attempt"] for b in bodies] == [1, 2, 3]
    assert {(b["event"], b["tenant_id"], b["id"]) for b in bodies} == {("message.created", "acme", job.id)}
    assert bodies[0]["payload"] == {"id": 7, "text": "olá"}
    for call in receiver.calls:
        assert verify(SECRET, call["body"], call["headers"][SIGNATURE_HEADER])
        assert not verify("another secret", call["body"], call["headers"][SIGNATURE_HEADER])
        assert call["headers"][EVENT_HEADER] == "message.created"
        assert call["headers"][DELIVERY_HEADER] == str(job.id)
    first, second, third = (call["at"] for call in receiver.calls)
    assert second - first >= BACKOFF and third - second >= 2 * BACKOFF


async def test_dead_letter_after_three_attempts_then_replay(store, receiver):
    receiver.default = 500
    await prepare(store, receiver.url)
    service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=BACKOFF, poll_interval=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        service.emit("acme", "connection.update", {"status": "connected"})
        await receiver.wait_calls(3)
        (job,) = await store.list_jobs(Queue.WEBHOOKS)
        dead = await wait_status(store, job.id, JobStatus.DEAD)
        assert (dead.attempts, dead.last_error) == (3, "HTTP 500")
        await trio.sleep(4 * BACKOFF)
        assert len(receiver.calls) == 3  # a dead letter is not retried by itself
        receiver.default = 204
        await service.replay(job.id)
        done = await wait_status(store, job.id, JobStatus.DONE)
        nursery.cancel_scope.cancel()
    assert done.attempts == 1 and len(receiver.calls) == 4


async def test_only_subscribed_events_of_the_tenant_are_delivered_unsigned_without_secret(store, receiver):
    await prepare(store, receiver.url, ["ticket.closed"], secret=None)
    service = Webhooks(store, targets=LOCAL_RECEIVERS, poll_interval=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        service.emit("zeta", "ticket.closed", {"id": 1})  # another tenant: no webhook
        service.emit("acme", "message.created", {"id": 2})  # not subscribed
        service.emit("acme", "ticket.closed", {"id": 3})
        await receiver.wait_calls(1)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()
    assert [json.loads(c["body"])["payload"] for c in receiver.calls] == [{"id": 3}]
    assert SIGNATURE_HEADER not in receiver.calls[0]["headers"]


async def test_at_most_concurrency_deliveries_in_flight(store, receiver):
    receiver.hold = trio.Event()
    await prepare(store, receiver.url)
    service = Webhooks(store, targets=LOCAL_RECEIVERS, concurrency=5, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        for n in range(12):
            service.emit("acme", "connection.update", {"n": n})
        await receiver.wait_calls(5)
        await trio.sleep(0.3)
        assert (receiver.active, len(receiver.calls)) == (5, 5)
        receiver.hold.set()
        await receiver.wait_calls(12)
        nursery.cancel_scope.cancel()
    assert receiver.max_active == 5


async def test_deliveries_survive_a_restart(db_path, receiver):
    receiver.default = 500
    async with open_store(SqliteBackend(db_path)) as store:
        await prepare(store, receiver.url)
        service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=BACKOFF, poll_interval=0.1)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            service.emit("acme", "connection.update", {"n": 1})
            await receiver.wait_calls(1)
            (job,) = await store.list_jobs(Queue.WEBHOOKS)
            await wait_status(store, job.id, JobStatus.QUEUED)
            nursery.cancel_scope.cancel()  # the daemon stops with a retry pending
        claimed = await store.claim_jobs(Queue.WEBHOOKS, limit=10)  # and a second row dies mid-flight
        await store.enqueue_webhook_event("acme", "connection.update", {"n": 2})
        (in_flight,) = await store.claim_jobs(Queue.WEBHOOKS, limit=10) or claimed
    receiver.default = 200
    async with open_store(SqliteBackend(db_path)) as store:  # a new process, the same database
        service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=BACKOFF, poll_interval=0.1, request_timeout=0.5, stale_after=1.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            for row in {job.id, in_flight.id}:
                await wait_status(store, row, JobStatus.DONE)
            nursery.cancel_scope.cancel()
    payloads = [json.loads(c["body"])["payload"]["n"] for c in receiver.calls[1:]]
    assert sorted(payloads) == [1, 2]


async def test_the_same_service_restarted_delivers_with_a_fresh_client(store, receiver):
    """The actor runs ``run`` again on the same instance after a restart: its HTTP client from the
    first run is closed, so the second run must open its own (a closed one quarantined every delivery)."""
    await prepare(store, receiver.url)
    service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=BACKOFF, poll_interval=0.1)
    for n in (1, 2):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            service.emit("acme", "connection.update", {"n": n})
            await receiver.wait_calls(n)
            for job in await store.list_jobs(Queue.WEBHOOKS):
                await wait_status(store, job.id, JobStatus.DONE)
            nursery.cancel_scope.cancel()  # a supervisor's restart: the run ends, the instance stays
    assert [json.loads(c["body"])["payload"]["n"] for c in receiver.calls] == [1, 2]
    assert service.stats["quarantined"] == 0  # both rows DONE (waited for above), none quarantined


async def test_admin_notifications_reach_the_configured_url_with_severity(store, receiver):
    receiver.script = [502]
    service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=BACKOFF, admin_notify_url=receiver.url, poll_interval=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        service.notify("acme", "s1", "RECONNECT_FAILED", "HIGH", "breaker open")
        await receiver.wait_calls(2)
        with trio.fail_after(10):
            while service.statistics().get("notifications_sent") != 1:
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    note = json.loads(receiver.calls[1]["body"])
    assert (note["eventType"], note["severity"], note["instanceName"], note["tenantId"]) == (
        "RECONNECT_FAILED", "HIGH", "s1", "acme")
