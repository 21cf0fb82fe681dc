"""The constraints that make the flows idempotent, on both backends."""

import trio

from actors.store import AlreadyStored, Inserted, TicketOutcome

from .helpers import message, seed


async def test_a_duplicate_message_is_already_stored_and_changes_nothing(store):
    contact = await seed(store)
    found = await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)
    first = await store.insert_message(message(contact, "WA1", ticket_id=found.ticket.id))
    again = await store.insert_message(message(contact, "WA1", ticket_id=found.ticket.id, body="other"))
    assert isinstance(first, Inserted)
    assert again == AlreadyStored(first.message_id)
    assert await store.count_messages() == 1
    stored = await store.get_message("s1", "WA1")
    assert stored.body == "hi"
    ticket = await store.get_ticket(found.ticket.id)
    assert ticket.unread == 1  # the duplicate did not bump the ticket


async def test_duplicates_inside_one_batch_store_once(store):
    contact = await seed(store)
    results = []

    async def insert(body: str) -> None:
        results.append(await store.insert_message(message(contact, "SAME", body=body)))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(insert, f"copy {i}")
    inserted = [r for r in results if isinstance(r, Inserted)]
    assert len(inserted) == 1
    assert all(r == AlreadyStored(inserted[0].message_id) for r in results if r is not inserted[0])
    assert await store.count_messages() == 1


async def test_the_same_wa_id_in_two_sessions_is_two_messages(store):
    contact = await seed(store)
    await store.upsert_session("s2", "acme", "second")
    a = await store.insert_message(message(contact, "WA1"))
    b = await store.insert_message(message(contact, "WA1", session="s2"))
    assert isinstance(a, Inserted) and isinstance(b, Inserted) and a != b


async def test_concurrent_find_or_create_makes_one_ticket(store):
    contact = await seed(store)
    found = []

    async def find() -> None:
        found.append(await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=7200))

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(find)
    assert len({f.ticket.id for f in found}) == 1
    assert sorted(f.outcome for f in found).count(TicketOutcome.CREATED) == 1
    assert len(await store.list_tickets("acme")) == 1


async def test_reopen_window_reopens_recent_and_starts_fresh_after(store, wall_clock):
    contact = await seed(store)
    first = await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=7200)
    await store.close_ticket(first.ticket.id)
    wall_clock.now += 7199
    again = await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=7200)
    assert (again.outcome, again.ticket.id, again.ticket.status) == (TicketOutcome.REOPENED, first.ticket.id, "pending")
    await store.close_ticket(again.ticket.id)
    wall_clock.now += 7201
    fresh = await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=7200)
    assert fresh.outcome is TicketOutcome.CREATED and fresh.ticket.id != first.ticket.id


async def test_outbox_duplicate_key_returns_the_same_row(store):
    await seed(store)
    first = await store.enqueue_outbox("acme", "s1", "key-1", "5511@s.whatsapp.net", {"text": "hello"})
    again = await store.enqueue_outbox("acme", "s1", "key-1", "5511@s.whatsapp.net", {"text": "changed"})
    assert first.created and not again.created
    assert again.item == first.item
    assert again.item.payload == {"text": "hello"}
    assert first.item.message_id.startswith("3EB0")


async def test_outbox_keys_are_per_tenant(store):
    await seed(store)
    await seed(store, tenant="globex", session="g1")
    a = await store.enqueue_outbox("acme", "s1", "key-1", "1@s.whatsapp.net", {})
    b = await store.enqueue_outbox("globex", "g1", "key-1", "1@s.whatsapp.net", {})
    assert a.created and b.created and a.item.id != b.item.id


async def test_media_job_is_one_per_message(store):
    contact = await seed(store)
    inserted = await store.insert_message(message(contact, "WA1"))
    a = await store.enqueue_media_job("acme", inserted.message_id)
    b = await store.enqueue_media_job("acme", inserted.message_id)
    assert a == b


async def test_contact_upsert_keeps_a_known_name(store):
    contact = await seed(store)
    again = await store.upsert_contact("acme", contact.jid, "")
    renamed = await store.upsert_contact("acme", contact.jid, "Robert")
    assert again.id == renamed.id == contact.id
    assert (again.name, renamed.name) == ("Bob", "Robert")
