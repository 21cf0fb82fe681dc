"""Retention sweeps and purges in the store (both backends): each kind deletes what is past its age
and nothing else, a batch takes at most ``limit`` rows, and a purged session or tenant leaves no
row behind in any table of the schema."""

from __future__ import annotations

import pytest

from actors.store import InvalidInput, Queue, Retention, RetentionKind, TicketStatus

from .helpers import message, seed

DAY = 86400.0


async def _old_and_new(store, wall_clock, contact, *, tenant="acme", session="s1", prefix="m", count=3):
    """``count`` messages ten days old and ``count`` from now; returns the ticket they are on."""
    found = await store.find_or_create_ticket(tenant, session, contact.id, reopen_window=0)
    now = wall_clock.now
    wall_clock.now = now - 10 * DAY
    await store.insert_messages([message(contact, f"{prefix}-old{i}", ticket_id=found.ticket.id, session=session)
                                 for i in range(count)])
    wall_clock.now = now
    await store.insert_messages([message(contact, f"{prefix}-new{i}", ticket_id=found.ticket.id, session=session)
                                 for i in range(count)])
    return found.ticket


async def _wa_ids(store, ticket_id):
    return sorted(m.wa_id for m in await store.list_messages(ticket_id))


async def test_messages_older_than_the_age_go_in_batches_of_at_most_limit(store, wall_clock):
    contact = await seed(store)
    ticket = await _old_and_new(store, wall_clock, contact, count=5)
    first = await store.sweep(RetentionKind.MESSAGES, "acme", days=7, limit=2)
    assert first.rows == 2
    rest = await store.sweep(RetentionKind.MESSAGES, "acme", days=7, limit=10)
    assert rest.rows == 3
    assert (await store.sweep(RetentionKind.MESSAGES, "acme", days=7, limit=10)).rows == 0
    assert await _wa_ids(store, ticket.id) == [f"m-new{i}" for i in range(5)]


async def test_a_sweep_touches_only_its_tenant(store, wall_clock):
    acme = await seed(store)
    other = await seed(store, tenant="other", session="s2")
    await _old_and_new(store, wall_clock, acme)
    other_ticket = await _old_and_new(store, wall_clock, other, tenant="other", session="s2", prefix="o")
    assert (await store.sweep(RetentionKind.MESSAGES, "acme", days=7, limit=100)).rows == 3
    assert len(await _wa_ids(store, other_ticket.id)) == 6


async def test_media_retention_detaches_old_files_and_names_them(store, wall_clock):
    contact = await seed(store)
    ticket = await _old_and_new(store, wall_clock, contact, count=1)
    for m in await store.list_messages(ticket.id):
        await store.enqueue_media_job("acme", m.id)
    jobs = await store.claim_jobs(Queue.MEDIA, limit=10)
    for job in jobs:
        await store.media_done(job.id, f"acme/2023/11/{job.message_id}.jpg")
    swept = await store.sweep(RetentionKind.MEDIA, "acme", days=7, limit=100)
    assert swept.rows == 1 and len(swept.files) == 1
    by_id = {m.wa_id: m for m in await store.list_messages(ticket.id)}
    assert by_id["m-old0"].media_path is None  # the message stays, without its file
    assert by_id["m-new0"].media_path == f"acme/2023/11/{by_id['m-new0'].id}.jpg"
    assert swept.files == (f"acme/2023/11/{by_id['m-old0'].id}.jpg",)


async def test_closed_tickets_go_with_their_messages_and_fences(store, wall_clock):
    contact = await seed(store)
    old = await _old_and_new(store, wall_clock, contact, count=3)
    now = wall_clock.now
    wall_clock.now = now - 10 * DAY
    await store.close_ticket(old.id)
    wall_clock.now = now
    recent = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    await store.insert_message(message(contact, "recent", ticket_id=recent.id))
    await store.close_ticket(recent.id)
    swept = [await store.sweep(RetentionKind.CLOSED_TICKETS, "acme", days=7, limit=4) for _ in range(3)]
    assert [s.rows for s in swept] == [4, 2, 1]  # messages first, a batch at a time, then the ticket
    assert await store.get_ticket(old.id) is None
    assert await store.list_messages(old.id) == []
    assert (await store.get_ticket(recent.id)).status is TicketStatus.CLOSED
    assert await _wa_ids(store, recent.id) == ["recent"]


async def test_only_finished_webhook_deliveries_go(store, wall_clock):
    await seed(store)
    await store.create_webhook("acme", "https://hooks.example.com/a", ["*"])
    now = wall_clock.now
    wall_clock.now = now - 40 * DAY
    await store.enqueue_webhook_event("acme", "message.created", {"n": 1})
    await store.enqueue_webhook_event("acme", "message.created", {"n": 2})
    done, waiting = await store.claim_jobs(Queue.WEBHOOKS, limit=2)
    await store.job_done(Queue.WEBHOOKS, done.id)
    await store.job_failed(Queue.WEBHOOKS, waiting.id, "503", retry_at=now + 60)  # queued, not finished
    wall_clock.now = now
    assert (await store.sweep(RetentionKind.WEBHOOK_DELIVERIES, "acme", days=30, limit=100)).rows == 1
    remaining = await store.list_jobs(Queue.WEBHOOKS)
    assert [job.id for job in remaining] == [waiting.id]


async def test_audit_lines_per_tenant_and_node_wide(store, wall_clock):
    await seed(store)
    await seed(store, tenant="acme_2", session="s2")  # "_" is a LIKE wildcard: must not match acme
    now = wall_clock.now
    wall_clock.now = now - 10 * DAY
    for target in ("/tenants/acme", "/tenants/acme/sessions/s1", "/tenants/acme_2/sessions/s2",
                   "/tenants/acmex", "/services/outbox", "/tenants"):
        await store.append_audit("admin", "restart", target, "ok")
    wall_clock.now = now
    await store.append_audit("admin", "restart", "/tenants/acme/sessions/s1", "ok")
    assert (await store.sweep(RetentionKind.AUDIT, "acme", days=7, limit=100)).rows == 2
    assert (await store.sweep(RetentionKind.AUDIT, None, days=7, limit=100)).rows == 2  # /services/..., /tenants
    left = sorted(entry.target for entry in await store.list_audit(limit=100))
    assert left == ["/tenants/acme/sessions/s1", "/tenants/acme_2/sessions/s2", "/tenants/acmex"]


async def test_retention_overrides_round_trip_and_refuse_bad_days(store):
    await seed(store)
    assert await store.get_retention("acme") == Retention()
    await store.set_retention("acme", Retention(messages=30, audit=0))
    assert await store.get_retention("acme") == Retention(messages=30, audit=0)
    with pytest.raises(InvalidInput, match="media"):
        await store.set_retention("acme", Retention(media=-1))
    with pytest.raises(InvalidInput, match="days"):
        await store.sweep(RetentionKind.MESSAGES, "acme", days=0, limit=10)
    with pytest.raises(InvalidInput, match="limit"):
        await store.sweep(RetentionKind.MESSAGES, "acme", days=1, limit=0)
    with pytest.raises(InvalidInput, match="tenant_id"):
        await store.sweep(RetentionKind.MESSAGES, None, days=1, limit=10)


async def test_deleted_sessions_and_tenants_are_due_after_their_grace(store, wall_clock):
    await seed(store)
    await seed(store, session="s2")
    assert await store.mark_session_deleted("s1", "deleted by request")
    first = wall_clock.now
    wall_clock.now += 100
    assert await store.mark_session_deleted("s1", "again")  # keeps the first time
    assert await store.mark_tenant_deleted("acme")
    assert not await store.mark_tenant_deleted("nobody")
    sessions, tenants = await store.due_for_purge(first)
    assert [s.id for s in sessions] == ["s1"] and tenants == []
    sessions, tenants = await store.due_for_purge(wall_clock.now)
    assert [s.id for s in sessions] == ["s1"] and tenants == ["acme"]
    assert await store.tenant_deleted_at("acme") == wall_clock.now
    assert await store.live_tenant_ids() == []
