"""Item isolation in the webhooks service (DESIGN §10), over real sockets and a real store: a
delivery whose own content cannot be sent is quarantined at once, an admin notification that
cannot be sent is dropped and counted, and the other deliveries go on in the same service."""

from __future__ import annotations

import json
import socket

import trio

from actors.store import QUARANTINED, JobStatus, Queue
from actors.webhooks import Severity, Webhooks

from .conftest import LOCAL_RECEIVERS, prepare

#: A URL no HTTP client can parse: its delivery is refused by the target policy, which no retry changes.
UNPARSABLE_URL = "http://[::1/hook"


async def test_a_delivery_that_cannot_be_sent_is_quarantined_and_the_others_are_delivered(store, receiver):
    bad = await prepare(store, UNPARSABLE_URL, ["message.created"])
    good = await store.create_webhook("acme", receiver.url, ["message.created"])
    with socket.socket() as probe:  # a port nobody listens on: the admin notification cannot be sent
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    service = Webhooks(store, targets=LOCAL_RECEIVERS, backoff_initial=0.2, poll_interval=0.1,
                       admin_notify_url=f"http://127.0.0.1:{dead_port}/alerts")
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        for n in range(3):
            service.emit("acme", "message.created", {"n": n})
        service.notify("acme", "s1", "BANNED", Severity.HIGH, "poison \ud800")
        with trio.fail_after(20):  # every outcome recorded (a receiver's call precedes its row's write)
            while [service.statistics().get(k, 0) for k in ("quarantined", "notifications_failed", "delivered")] != [
                    3, 1, 3]:
                await trio.sleep(0.02)
        jobs = await store.list_jobs(Queue.WEBHOOKS)
        nursery.cancel_scope.cancel()
    by_hook = {hook.id: [j for j in jobs if j.webhook_id == hook.id] for hook in (bad, good)}
    assert [j.status for j in by_hook[good.id]] == [JobStatus.DONE] * 3
    assert sorted(json.loads(call["body"])["payload"]["n"] for call in receiver.calls) == [0, 1, 2]
    for job in by_hook[bad.id]:  # dead at their first attempt: a retry cannot fix the content
        assert (job.status, job.attempts) == (JobStatus.DEAD, 1)
        assert job.last_error.startswith(f"{QUARANTINED}: UnsafeTarget: refused target: url: not a valid URL")
    stats = service.statistics()
    assert (stats["quarantined"], stats["notifications_failed"], stats["delivered"]) == (3, 1, 3)
