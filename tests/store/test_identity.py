"""LID identity in the store: resolution, the merge of a mapping learned later, its concurrency.

Every test runs on SQLite and PostgreSQL (``backend_name``); the concurrent ones use two stores on
one database (two nodes), each with its own writer and connections.
"""

from __future__ import annotations

import functools

import pytest
import trio

from actors.store import InvalidInput, TicketStatus, open_store

from .helpers import message

LID = "81234567890123@lid"
PN = "5511999990000@s.whatsapp.net"


async def _tenant(store) -> None:
    await store.upsert_tenant("acme", "Acme")
    await store.upsert_session("s1", "acme", "main")
    await store.upsert_session("s2", "acme", "other")


async def _write(store, session: str, jid: str, wa_id: str, sent_at: float) -> int:
    contact, found = await store.open_conversation("acme", session, jid, "Bob", reopen_window=0)
    await store.insert_messages([message(contact, wa_id, ticket_id=found.ticket.id, session=session, sent_at=sent_at,
                                         body=wa_id)])
    return found.ticket.id


async def test_a_mapped_lid_is_the_phone_numbers_contact(store):
    await _tenant(store)
    first = await _write(store, "s1", PN, "m1", 1.0)
    await store.learn_lid("acme", LID, PN)
    assert await _write(store, "s1", LID, "m2", 2.0) == first
    assert await store.find_contact("acme", LID) is None
    assert await store.lid_mapping("acme", LID) == PN


async def test_a_mapping_learned_later_merges_contacts_and_keeps_the_older_ticket(store):
    await _tenant(store)
    older = await _write(store, "s1", LID, "m1", 1.0)  # the customer wrote under the LID first
    newer = await _write(store, "s1", PN, "m2", 2.0)
    only_lid = await _write(store, "s2", LID, "m3", 3.0)  # another session: moved, not joined
    lid_contact = await store.find_contact("acme", LID)
    merge = await store.learn_lid("acme", LID, PN)
    phone = await store.find_contact("acme", PN)
    assert merge.contact == phone and merge.merged_contact == lid_contact.id
    assert merge.kept == {"s1": older} and merge.closed == (newer,)
    assert set(merge.moved) == {older, only_lid}
    assert await store.find_contact("acme", LID) is None
    kept = await store.get_ticket(older)
    assert (kept.contact_id, kept.status, kept.unread, kept.last_message) == (phone.id, TicketStatus.PENDING, 2, "m2")
    assert [m.wa_id for m in await store.list_messages(older)] == ["m1", "m2"]
    assert all(m.contact_id == phone.id for m in await store.list_messages(older))
    emptied = await store.get_ticket(newer)
    assert (emptied.status, emptied.unread, await store.list_messages(newer)) == (TicketStatus.CLOSED, 0, [])
    assert (await store.get_ticket(only_lid)).contact_id == phone.id
    # idempotent: learning it again changes nothing
    assert await store.learn_lid("acme", LID, PN) == type(merge)()
    assert await _write(store, "s1", LID, "m4", 4.0) == older


async def test_a_lid_without_a_phone_contact_becomes_one(store):
    await _tenant(store)
    ticket = await _write(store, "s1", LID, "m1", 1.0)
    merge = await store.learn_lid("acme", LID, PN)
    assert merge.contact.jid == PN and merge.contact.name == "Bob" and merge.moved == (ticket,)
    assert (await store.get_ticket(ticket)).contact_id == merge.contact.id


async def test_learn_lid_refuses_what_is_not_a_lid_and_a_phone_jid(store):
    with pytest.raises(InvalidInput, match="lid"):
        await store.learn_lid("acme", PN, PN)
    with pytest.raises(InvalidInput, match="pn"):
        await store.learn_lid("acme", LID, LID)


async def test_concurrent_lid_and_phone_conversations_and_a_learned_mapping_end_as_one_customer(
    make_backend, wall_clock,
):
    """Two nodes open the customer's conversation under both forms while each learns the mapping:
    one contact (the phone's), one active ticket, whatever the interleaving. (A message's insert is a
    later write: within a session the mapping waits for the inbound in flight, see TicketInbound.)"""
    async with open_store(make_backend(), clock=wall_clock) as one, open_store(make_backend(), clock=wall_clock) as two:
        await _tenant(one)
        for round_ in range(6):
            lid, pn = f"8123456789{round_}@lid", f"551199999{round_}@s.whatsapp.net"
            async with trio.open_nursery() as nursery:
                for i, store in enumerate((one, two, one, two, one, two)):
                    nursery.start_soon(functools.partial(
                        store.open_conversation, "acme", "s1", lid if i % 3 else pn, "Bob", reopen_window=0))
                    if i == round_:
                        nursery.start_soon(store.learn_lid, "acme", lid, pn)
                nursery.start_soon((two if round_ % 2 else one).learn_lid, "acme", lid, pn)
            assert await one.find_contact("acme", lid) is None, round_
            phone = await one.find_contact("acme", pn)
            tickets = [t for t in await one.list_tickets("acme") if t.status is not TicketStatus.CLOSED]
            assert [t.contact_id for t in tickets if t.contact_id == phone.id] == [phone.id], round_


async def test_history_is_imported_into_a_closed_ticket_idempotently_without_unread(store):
    await _tenant(store)
    contact = await store.upsert_contact("acme", PN, "Bob")  # builder only: ids are filled by the import
    old = [message(contact, f"h{i}", sent_at=float(i), body=f"old {i}") for i in range(3)]
    assert await store.import_history("acme", "s1", PN, "Bob", old) == 3
    [ticket] = await store.list_tickets("acme")
    assert (ticket.status, ticket.unread, ticket.last_message) == (TicketStatus.CLOSED, 0, "old 2")
    assert await store.import_history("acme", "s1", PN, "Bob", old) == 0  # again: nothing new
    live = await _write(store, "s1", PN, "live", 10.0)  # the customer writes: a live ticket
    assert live != ticket.id
    assert await store.import_history("acme", "s1", PN, "Bob", [message(contact, "h9", sent_at=5.0)]) == 1
    active = await store.get_ticket(live)
    assert (active.unread, active.last_message) == (1, "live")  # history is not news
    assert [m.wa_id for m in await store.list_messages(live)] == ["live", "h9"]
