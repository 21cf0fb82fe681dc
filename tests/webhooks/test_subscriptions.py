"""Events for tenants without a matching webhook never reach the store's write path."""

from __future__ import annotations

import trio

from actors.store import Queue
from actors.webhooks import EVENT_HEADER, Webhooks

from .conftest import LOCAL_RECEIVERS, prepare


async def test_unsubscribed_events_are_not_queued_and_a_new_webhook_is_seen_at_once(store, receiver):
    await prepare(store, receiver.url, ["connection.update"])
    service = Webhooks(store, targets=LOCAL_RECEIVERS, poll_interval=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        for i in range(50):
            service.emit("acme", "message.created", {"id": i})  # acme's webhook wants connection.update only
            service.emit("zeta", "message.created", {"id": i})  # zeta has no webhook at all
        service.emit("acme", "connection.update", {"status": "connected"})
        await receiver.wait_calls(1)
        assert service.statistics()["unsubscribed"] == 100
        assert len(await store.list_jobs(Queue.WEBHOOKS)) == 1

        await store.create_webhook("zeta", receiver.url, ["message.created"])
        service.subscriptions_changed("zeta")
        service.emit("zeta", "message.created", {"id": 99})
        await receiver.wait_calls(2)
        nursery.cancel_scope.cancel()
    assert [call["headers"][EVENT_HEADER] for call in receiver.calls] == ["connection.update", "message.created"]
