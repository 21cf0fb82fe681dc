"""Item isolation in the store (DESIGN §10): text from WhatsApp is never refused, our own callers'
unstorable text is refused by name, and a job that keeps killing its worker is quarantined."""

import json

import pytest

from actors.store import AlreadyStored, Inserted, InvalidInput, JobStatus, Queue, storable_text
from actors.store._ops_queues import QUARANTINE_AFTER_INTERRUPTIONS, QUARANTINED
from actors.store._store import MAX_KEY_CHARS

from .helpers import message, seed

#: Text no backend stores as is (lone surrogates: neither; NUL: PostgreSQL), with what is stored.
UNSTORABLE = {
    "hi \ud800": "hi \ufffd",
    "\udfff tail": "\ufffd tail",
    "nul\x00byte": "nul\ufffdbyte",
    "mixed \U0001f600 \ud83d and \x00": "mixed \U0001f600 \ufffd and \ufffd",
}

#: Valid text that must pass unchanged: 4-byte emoji, RTL and zero-width marks, a long string.
VALID = [
    "emoji \U0001f600\U0001f44d\U0001f3fd",
    "\u202eRTL override\u202c \u200f\u200e",
    "zero\u200bwidth\u200d\ufeff",
    "x" * 200_000,
]


async def test_unstorable_bodies_are_stored_with_replacement_chars_and_the_raw_form(store):
    contact = await seed(store)
    ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    texts = [*UNSTORABLE, *VALID]
    results = await store.insert_messages(
        [message(contact, f"w{i}", ticket_id=ticket.id, body=text, sent_at=i) for i, text in enumerate(texts)]
    )
    assert all(isinstance(r, Inserted) for r in results)
    for i, text in enumerate(texts):
        stored = await store.get_message("s1", f"w{i}")
        if text in UNSTORABLE:
            assert stored.body == UNSTORABLE[text]
            assert json.loads(stored.raw_body) == text  # the exact original comes back
        else:
            assert (stored.body, stored.raw_body) == (text, None)
    assert (await store.get_ticket(ticket.id)).last_message == VALID[-1]
    # a re-delivery of a poison message is recognised, not stored twice
    again = await store.insert_message(message(contact, "w0", ticket_id=ticket.id, body=texts[0]))
    assert isinstance(again, AlreadyStored) and again.message_id == results[0].message_id


async def test_a_whatsapp_id_with_unstorable_characters_maps_to_one_stored_key(store):
    contact = await seed(store)
    first = await store.insert_message(message(contact, "id\ud800", body="a"))
    second = await store.insert_message(message(contact, "id\ud800", body="a"))
    assert isinstance(first, Inserted) and second == AlreadyStored(first.message_id)
    assert (await store.get_message("s1", "id\ufffd")).id == first.message_id


async def test_a_message_is_checked_field_by_field_even_where_its_fields_join_into_valid_text(store):
    # insert_message checks session_id, wa_id and body in one scan of their concatenation (issue 18).
    # The two halves of an emoji's surrogate pair, split across two fields, sit side by side there,
    # yet each field alone holds a lone surrogate: the session id is refused, the WhatsApp id and
    # the body are cleaned, as when each field was checked alone.
    contact = await seed(store)
    high, low = "\ud83d", "\ude00"
    with pytest.raises(InvalidInput, match="^session_id: must be valid Unicode"):
        await store.insert_message(message(contact, f"{low}id", session=f"s1{high}"))
    await store.insert_message(message(contact, f"id{high}", body=f"{low} hi"))
    stored = await store.get_message("s1", "id\ufffd")
    assert (stored.body, json.loads(stored.raw_body)) == ("\ufffd hi", f"{low} hi")


async def test_a_message_without_a_text_body_is_refused_naming_it(store):
    contact = await seed(store)
    with pytest.raises(InvalidInput, match="^body: must be a string, got NoneType"):
        await store.insert_message(message(contact, "no-body", body=None))
    assert await store.get_message("s1", "no-body") is None


async def test_a_receipt_for_an_id_no_message_can_have_changes_nothing_and_never_fails(store):
    contact = await seed(store)
    await store.insert_message(message(contact, "id\ud800", from_me=True))
    assert await store.update_message_status("s1", "id\ud800", "delivered")  # the same stored key
    assert (await store.get_message("s1", "id\ufffd")).status == "delivered"
    for wa_id in ("\ud800\x00", "x" * (MAX_KEY_CHARS + 1)):
        assert not await store.update_message_status("s1", wa_id, "read")
        assert not await store.outbox_receipt("s1", wa_id, "read")


async def test_unstorable_contact_names_are_kept_clean_with_the_raw_form(store):
    await seed(store)
    poison = await store.upsert_contact("acme", "77@s.whatsapp.net", "Ana \ud800\x00")
    assert (poison.name, json.loads(poison.raw_name)) == ("Ana \ufffd\ufffd", "Ana \ud800\x00")
    kept = await store.upsert_contact("acme", "77@s.whatsapp.net", "")  # no push name: nothing erased
    assert (kept.name, kept.raw_name) == (poison.name, poison.raw_name)
    fixed = await store.upsert_contact("acme", "77@s.whatsapp.net", "Ana \u202eRTL")
    assert (fixed.name, fixed.raw_name) == ("Ana \u202eRTL", None)
    contact, found = await store.open_conversation("acme", "s1", "\ud800@s.whatsapp.net", "\x00",
                                                   reopen_window=0)
    assert (contact.jid, contact.name, json.loads(contact.raw_name)) == ("\ufffd@s.whatsapp.net", "\ufffd", "\x00")
    assert found.ticket.contact_id == contact.id


async def test_our_own_callers_unstorable_text_is_refused_by_name(store):
    await seed(store)
    with pytest.raises(InvalidInput, match="^name: must be valid Unicode"):
        await store.upsert_tenant("other", "Bad \ud800")
    with pytest.raises(InvalidInput, match="^email: must be valid Unicode"):
        await store.create_user("acme", "a\x00@b.c", "A")
    with pytest.raises(InvalidInput, match=f"^idempotency_key: at most {MAX_KEY_CHARS} characters"):
        await store.enqueue_outbox("acme", "s1", "k" * 60_000, "1@s.whatsapp.net", {"text": "x"})
    with pytest.raises(InvalidInput, match=f"^jid: at most {MAX_KEY_CHARS} characters"):
        await store.upsert_contact("acme", "9" * (MAX_KEY_CHARS + 1) + "@s.whatsapp.net", "x")
    with pytest.raises(InvalidInput, match="^secret: must be valid Unicode"):
        await store.create_webhook("acme", "https://example.com/hook", ["*"], secret="s\ud800")
    with pytest.raises(InvalidInput, match="^queue: must be valid Unicode"):
        await store.transfer_ticket(1, queue="sales\x00")
    # what only reports what others said is kept, cleaned
    assert (await store.set_session_status("s1", "failed", "WhatsApp said \ud800")).reason == "WhatsApp said \ufffd"
    assert (await store.append_audit("admin", "retry", "outbox/1", "refused", "bad \x00")).detail == "bad \ufffd"
    # refused before anything was written
    assert await store.get_tenant("other") is None
    assert await store.list_jobs(Queue.OUTBOX) == []


def test_storable_text_joins_a_split_surrogate_pair_and_keeps_valid_text():
    assert storable_text("\ud83d\ude00") == "\U0001f600"
    for text in VALID:
        assert storable_text(text) is text


async def _running_media_job(store) -> int:
    contact = await seed(store)
    await store.insert_message(message(contact, "m1"))
    stored = await store.get_message("s1", "m1")
    job = await store.enqueue_media_job("acme", stored.id)
    assert [j.id for j in await store.claim_jobs(Queue.MEDIA)] == [job.id]
    return job.id


async def _running_webhook_delivery(store) -> int:
    await seed(store)
    await store.create_webhook("acme", "https://example.com/hook", ["*"])
    [delivery] = await store.enqueue_webhook_event("acme", "message.created", {"n": 1})
    assert [j.id for j in await store.claim_jobs(Queue.WEBHOOKS)] == [delivery.id]
    return delivery.id


async def _running_outbox_item(store) -> int:
    await seed(store)
    item = (await store.enqueue_outbox("acme", "s1", "k", "1@s.whatsapp.net", {"text": "x"})).item
    assert [i.id for i in await store.claim_outbox()] == [item.id]
    return item.id


@pytest.mark.parametrize("queue, running", [
    (Queue.OUTBOX, _running_outbox_item),
    (Queue.MEDIA, _running_media_job),
    (Queue.WEBHOOKS, _running_webhook_delivery),
])
async def test_a_job_found_running_with_no_worker_again_and_again_is_quarantined(store, queue, running):
    job_id = await running(store)
    claim = store.claim_outbox if queue is Queue.OUTBOX else lambda: store.claim_jobs(queue)
    for interruption in range(1, QUARANTINE_AFTER_INTERRUPTIONS):
        assert await store.recover_running(queue) == 1  # the worker died with it: queued again
        job = await store.get_job(queue, job_id)
        assert (job.status, job.interrupted) == (JobStatus.QUEUED, interruption)
        assert [j.id for j in await claim()] == [job_id]
    assert await store.recover_running(queue) == 1
    quarantined = await store.get_job(queue, job_id)
    assert (quarantined.status, quarantined.interrupted) == (JobStatus.DEAD, QUARANTINE_AFTER_INTERRUPTIONS)
    assert quarantined.last_error.startswith(f"{QUARANTINED}: ")
    if queue is Queue.OUTBOX:
        assert quarantined.delivery == "failed"
    assert [j.id for j in await store.list_jobs(queue, JobStatus.DEAD)] == [job_id]
    assert await claim() == []  # never handed out again by itself
    retried = await store.retry_job(queue, job_id)  # the admin gives it its full chances again
    assert (retried.status, retried.interrupted, retried.attempts, retried.last_error) == (
        JobStatus.QUEUED, 0, 0, None)
    assert [j.id for j in await claim()] == [job_id]
