"""Outbox, media jobs, webhook deliveries: claim, finish, retry, dead letters, administration."""

import pytest

from actors.store import Conflict, DeliveryStatus, InvalidInput, JobStatus, Queue
from actors.store._ops_queues import TAKE_OVER_CHUNK

from .helpers import message, seed


async def test_outbox_is_claimed_head_of_line_per_session(store, wall_clock):
    await seed(store)
    await store.upsert_session("s2", "acme", "second")
    a1 = (await store.enqueue_outbox("acme", "s1", "a1", "1@s.whatsapp.net", {"n": 1})).item
    a2 = (await store.enqueue_outbox("acme", "s1", "a2", "1@s.whatsapp.net", {"n": 2})).item
    b1 = (await store.enqueue_outbox("acme", "s2", "b1", "1@s.whatsapp.net", {"n": 3})).item

    claimed = await store.claim_outbox()
    assert [(i.id, i.status, i.attempts) for i in claimed] == [(a1.id, "running", 1), (b1.id, "running", 1)]
    assert await store.claim_outbox() == []  # a2 waits behind the running a1

    retry_at = wall_clock.now + 30
    failed = await store.job_failed(Queue.OUTBOX, a1.id, "socket closed", retry_at=retry_at)
    assert (failed.status, failed.last_error, failed.next_attempt_at) == ("queued", "socket closed", retry_at)
    assert await store.claim_outbox(session_id="s1") == []  # a1 not due yet, a2 must not overtake it
    wall_clock.now = retry_at
    again = await store.claim_outbox(session_id="s1")
    assert [(i.id, i.attempts) for i in again] == [(a1.id, 2)]
    sending = await store.outbox_sending(a1.id)
    assert sending.status == "sending"
    assert await store.claim_outbox(session_id="s1") == []  # a1 is in flight: a2 still waits
    sent = (await store.outbox_sent(a1.id, "WA-1", sent_at=wall_clock.now)).item
    assert (sent.status, sent.delivery, sent.wa_id) == ("done", "sent", "WA-1")
    assert [i.id for i in await store.claim_outbox(session_id="s1")] == [a2.id]

    assert await store.outbox_receipt("s1", "WA-1", DeliveryStatus.READ)  # receipts carry WhatsApp's id
    assert not await store.outbox_receipt("s1", "WA-1", DeliveryStatus.DELIVERED)  # never backwards
    assert not await store.outbox_receipt("s1", a1.message_id, DeliveryStatus.PLAYED)  # our own id is not WhatsApp's
    assert (await store.get_job(Queue.OUTBOX, a1.id)).delivery == "read"


async def test_outbox_dead_letter_and_retry(store):
    await seed(store)
    item = (await store.enqueue_outbox("acme", "s1", "k", "1@s.whatsapp.net", {})).item
    await store.claim_outbox()
    dead = await store.job_failed(Queue.OUTBOX, item.id, "banned", retry_at=None)
    assert (dead.status, dead.delivery) == ("dead", "failed")
    assert [j.id for j in await store.list_jobs(Queue.OUTBOX, JobStatus.DEAD)] == [item.id]
    with pytest.raises(Conflict, match="not sending"):
        await store.outbox_sent(item.id, "WA-X", sent_at=0.0)
    revived = await store.retry_job(Queue.OUTBOX, item.id)
    assert (revived.status, revived.attempts, revived.delivery, revived.last_error) == ("queued", 0, "pending", None)


async def test_paused_outbox_keeps_accepting_but_hands_nothing_out(store):
    await seed(store)
    await store.upsert_session("s2", "acme", "second")
    assert await store.set_paused(Queue.OUTBOX, True, session_id="s1")
    assert not await store.set_paused(Queue.OUTBOX, True, session_id="s1")
    await store.enqueue_outbox("acme", "s1", "a", "1@s.whatsapp.net", {})
    b = (await store.enqueue_outbox("acme", "s2", "b", "1@s.whatsapp.net", {})).item
    assert [i.id for i in await store.claim_outbox()] == [b.id]
    assert await store.paused(Queue.OUTBOX) == frozenset({"s1"})
    await store.set_paused(Queue.OUTBOX, True)
    await store.job_failed(Queue.OUTBOX, b.id, "x", retry_at=0.0)
    assert await store.claim_outbox() == []
    await store.set_paused(Queue.OUTBOX, False)
    await store.set_paused(Queue.OUTBOX, False, session_id="s1")
    assert len(await store.claim_outbox()) == 2


async def test_media_job_life_cycle_updates_the_message(store, wall_clock):
    contact = await seed(store)
    inserted = await store.insert_message(message(contact, "IMG"))
    job = await store.enqueue_media_job("acme", inserted.message_id)
    [claimed] = await store.claim_jobs(Queue.MEDIA)
    assert (claimed.id, claimed.status, claimed.attempts) == (job.id, "running", 1)
    await store.job_failed(Queue.MEDIA, job.id, "timeout", retry_at=wall_clock.now + 2)
    assert await store.claim_jobs(Queue.MEDIA) == []
    wall_clock.now += 2
    [claimed] = await store.claim_jobs(Queue.MEDIA)
    done = await store.media_done(claimed.id, "/media/acme/2026/11/IMG.jpg")
    assert (done.status, done.path, done.attempts) == ("done", "/media/acme/2026/11/IMG.jpg", 2)
    assert (await store.get_message("s1", "IMG")).media_path == "/media/acme/2026/11/IMG.jpg"


async def test_webhook_deliveries_fan_out_and_dead_letter(store, wall_clock):
    await seed(store)
    all_events = await store.create_webhook("acme", "https://a.example/hook", ["*"])
    await store.create_webhook("acme", "https://b.example/hook", ["ticket.created"])
    deliveries = await store.enqueue_webhook_event("acme", "message.created", {"id": 1})
    assert [d.webhook_id for d in deliveries] == [all_events.id]
    both = await store.enqueue_webhook_event("acme", "ticket.created", {"id": 2})
    assert len(both) == 2
    claimed = await store.claim_jobs(Queue.WEBHOOKS, limit=2)
    assert [c.id for c in claimed] == [deliveries[0].id, both[0].id]
    await store.job_done(Queue.WEBHOOKS, claimed[0].id)
    dead = await store.job_failed(Queue.WEBHOOKS, claimed[1].id, "HTTP 500", retry_at=None)
    assert dead.status == "dead" and dead.payload == {"id": 2}
    assert [d.id for d in await store.list_jobs(Queue.WEBHOOKS, JobStatus.DEAD, tenant_id="acme")] == [dead.id]


async def test_a_family_subscription_takes_every_event_of_the_family(store, wall_clock):
    await seed(store)
    tickets = await store.create_webhook("acme", "https://a.example/hook", ["ticket.*"])
    for event in ("ticket.created", "ticket.updated"):
        assert [d.webhook_id for d in await store.enqueue_webhook_event("acme", event, {})] == [tickets.id]
    assert await store.enqueue_webhook_event("acme", "message.created", {}) == []
    assert await store.enqueue_webhook_event("acme", "tickets.created", {}) == []


async def test_admin_clean_remove_and_recover(store, wall_clock):
    await seed(store)
    await store.create_webhook("acme", "https://a.example/hook", ["*"])
    for i in range(3):
        await store.enqueue_webhook_event("acme", "e", {"i": i})
    first, second, third = await store.claim_jobs(Queue.WEBHOOKS)
    await store.job_done(Queue.WEBHOOKS, first.id)
    await store.job_failed(Queue.WEBHOOKS, second.id, "gone", retry_at=None)
    assert not await store.remove_job(Queue.WEBHOOKS, third.id)  # running: not removable
    wall_clock.now += 10
    assert await store.recover_running(Queue.WEBHOOKS, stale_after=60) == 0  # claimed 10 s ago
    assert await store.recover_running(Queue.WEBHOOKS, stale_after=5) == 1
    assert (await store.get_job(Queue.WEBHOOKS, third.id)).status == "queued"
    wall_clock.now += 3600
    assert await store.clean_jobs(Queue.WEBHOOKS, older_than=60) == 1  # only done
    assert await store.clean_jobs(Queue.WEBHOOKS, older_than=60, include_dead=True) == 1
    assert await store.remove_job(Queue.WEBHOOKS, third.id)
    assert await store.list_jobs(Queue.WEBHOOKS) == []
    with pytest.raises(InvalidInput, match="claim_outbox"):
        await store.claim_jobs(Queue.OUTBOX)


async def test_message_receipts_only_move_forward(store):
    contact = await seed(store)
    await store.insert_message(message(contact, "OUT", from_me=True))
    assert await store.update_message_status("s1", "OUT", DeliveryStatus.DELIVERED)
    assert not await store.update_message_status("s1", "OUT", DeliveryStatus.SENT)
    assert (await store.get_message("s1", "OUT")).status == "delivered"


async def test_audit_and_session_status(store):
    await seed(store)
    entry = await store.append_audit("admin", "restart", "/tenants/acme/sessions/s1", "ok", "by API")
    assert (await store.list_audit(target="/tenants/acme/sessions/s1")) == [entry]
    session = await store.set_session_status("s1", "connected")
    assert (session.status, session.reason) == ("connected", None)


async def test_recover_running_at_start_requeues_every_claimed_job(store):
    contact = await seed(store)
    for i in range(3):
        inserted = await store.insert_message(message(contact, f"IMG{i}"))
        await store.enqueue_media_job("acme", inserted.message_id)
    assert len(await store.claim_jobs(Queue.MEDIA)) == 3
    assert await store.recover_running(Queue.MEDIA) == 3
    assert [j.status for j in await store.list_jobs(Queue.MEDIA)] == ["queued"] * 3
    with pytest.raises(InvalidInput, match="stale_after"):
        await store.recover_running(Queue.MEDIA, stale_after=-1)


async def test_next_due_tells_the_worker_when_to_look_again(store, wall_clock):
    await seed(store)
    assert await store.next_due(Queue.OUTBOX) is None
    item = (await store.enqueue_outbox("acme", "s1", "k", "1@s.whatsapp.net", {})).item
    assert await store.next_due(Queue.OUTBOX, session_id="s1") == wall_clock.now
    await store.claim_outbox()
    assert await store.next_due(Queue.OUTBOX) is None  # running, not waiting
    await store.job_failed(Queue.OUTBOX, item.id, "timeout", retry_at=wall_clock.now + 8)
    assert await store.next_due(Queue.OUTBOX) == wall_clock.now + 8
    assert await store.next_due(Queue.OUTBOX, session_id="other") is None
    assert await store.next_due(Queue.MEDIA) is None
    with pytest.raises(InvalidInput, match="session_id"):
        await store.next_due(Queue.MEDIA, session_id="s1")


async def test_a_receipt_before_the_sends_answer_is_applied_when_the_id_is_recorded(store, wall_clock):
    contact = await seed(store)
    ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    item = (await store.enqueue_outbox("acme", "s1", "k", contact.jid, {"text": "hi"}, ticket_id=ticket.id)).item
    await store.claim_outbox()
    await store.outbox_sending(item.id)
    # WhatsApp's receipts arrive before the send's answer is committed: nothing to move yet
    assert not await store.update_message_status("s1", "WA-1", DeliveryStatus.DELIVERED)
    assert not await store.update_message_status("s1", "WA-1", DeliveryStatus.READ)
    assert not await store.update_message_status("s1", "WA-1", DeliveryStatus.DELIVERED)  # late, lower: kept READ
    record = await store.outbox_sent(item.id, "WA-1", sent_at=wall_clock.now)
    assert (record.status, record.item.delivery, record.item.wa_id) == ("read", "read", "WA-1")
    stored = await store.get_message("s1", "WA-1")
    assert (stored.id, stored.status, stored.from_me, stored.ticket_id) == (record.message_id, "read", True, ticket.id)
    assert await store.update_message_status("s1", "WA-1", DeliveryStatus.PLAYED)  # then as usual, forward only


async def test_early_receipts_that_never_match_are_swept(store, wall_clock):
    await seed(store)
    assert not await store.update_message_status("s1", "PHONE-GROUP-1", DeliveryStatus.READ)
    wall_clock.now += 3601  # past EARLY_RECEIPT_TTL; the next unmatched receipt sweeps the old one
    assert not await store.update_message_status("s1", "PHONE-GROUP-2", DeliveryStatus.READ)
    left = await store._fetch("SELECT wa_id FROM early_receipts ORDER BY wa_id")
    assert [row["wa_id"] for row in left] == ["PHONE-GROUP-2"]


async def test_unknown_sends_wait_for_an_admin_and_a_late_answer_resolves_them(store, wall_clock):
    await seed(store)
    a = (await store.enqueue_outbox("acme", "s1", "a", "1@s.whatsapp.net", {"text": "a"})).item
    b = (await store.enqueue_outbox("acme", "s1", "b", "1@s.whatsapp.net", {"text": "b"})).item
    await store.claim_outbox()
    await store.outbox_sending(a.id)
    assert not await store.remove_job(Queue.OUTBOX, a.id)  # in flight: not removable
    with pytest.raises(Conflict, match="sending: only queued, dead or unknown"):
        await store.retry_job(Queue.OUTBOX, a.id)
    [unknown] = await store.outbox_unknown("zapvisor stopped mid-send")  # every sending row, at start
    assert (unknown.id, unknown.status, unknown.last_error) == (a.id, "unknown", "zapvisor stopped mid-send")
    assert await store.outbox_unknown("again") == []
    assert [i.id for i in await store.claim_outbox()] == [b.id]  # an unknown row does not hold the line
    await store.outbox_sending(b.id)
    late = await store.outbox_sent(a.id, "WA-A", sent_at=wall_clock.now)  # its answer did come after all
    assert (late.item.status, late.item.wa_id, late.item.last_error) == ("done", "WA-A", None)
    [b_unknown] = await store.outbox_unknown("no answer", item_id=b.id)
    retried = await store.retry_job(Queue.OUTBOX, b_unknown.id)  # the deliberate re-send
    assert (retried.status, retried.attempts, retried.delivery) == ("queued", 0, "pending")
    with pytest.raises(InvalidInput, match="outbox_sent"):
        await store.job_done(Queue.OUTBOX, b.id)


async def test_take_over_marks_the_sessions_sends_unknown_keeping_those_still_in_flight(store):
    await seed(store)
    await store.upsert_session("s2", "acme", "second")
    rows = [(await store.enqueue_outbox("acme", sid, key, "1@s.whatsapp.net", {})).item
            for sid, key in (("s1", "a"), ("s2", "b"))]
    for item in await store.claim_outbox():
        await store.outbox_sending(item.id)
    s1, s2 = rows
    kept = await store.take_over_outbox(["s1"], "taken over", keep=(s1.id,))  # ours, still in flight
    assert kept.unknown == ()
    taken = await store.take_over_outbox(["s1"], "taken over")
    assert [(i.id, i.status, i.last_error) for i in taken.unknown] == [(s1.id, "unknown", "taken over")]
    assert (await store.get_job(Queue.OUTBOX, s2.id)).status == "sending"  # another session's: untouched


async def test_take_over_recovers_the_sessions_claims_and_names_those_with_queued_sends(store):
    await seed(store)
    for session in ("s2", "s3", "s4"):
        await seed(store, session=session)
    for session in ("s1", "s2", "s3"):
        await store.enqueue_outbox("acme", session, f"k-{session}", "1@s.whatsapp.net", {})
    await store.enqueue_outbox("acme", "s3", "k-s3-second", "1@s.whatsapp.net", {})
    assert len(await store.claim_outbox()) == 3
    taken = await store.take_over_outbox(["s1", "s3", "s4"], "taken over", recover=True)  # s1, s3, s4 moved here
    states = {(i.session_id, i.idempotency_key): i.status for i in await store.list_jobs(Queue.OUTBOX)}
    assert states == {("s1", "k-s1"): "queued", ("s2", "k-s2"): "running", ("s3", "k-s3"): "queued",
                      ("s3", "k-s3-second"): "queued"}
    assert taken.waiting == {"s1", "s3"}  # s4 has nothing to send; s2 is not taken over
    assert (await store.take_over_outbox(["s2"], "taken over")).waiting == set()  # not recovered: still running


async def test_take_over_of_more_sessions_than_one_statement_names(store):
    sessions = [f"s{i}" for i in range(TAKE_OVER_CHUNK + 3)]
    await seed(store)
    for session in sessions[1:]:
        await store.upsert_session(session, "acme", session)
    for session in (sessions[0], sessions[-1]):
        await store.enqueue_outbox("acme", session, f"k-{session}", "1@s.whatsapp.net", {})
    await store.claim_outbox()
    taken = await store.take_over_outbox(sessions, "taken over", recover=True)
    assert taken.waiting == {sessions[0], sessions[-1]}  # the first statement's and the last one's
