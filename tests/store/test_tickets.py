import pytest
import trio

from actors.store import Conflict, NotFound

from .helpers import message, seed


async def _ticket(store):
    contact = await seed(store)
    agent = await store.create_user("acme", "ana@acme.test", "Ana")
    other = await store.create_user("acme", "rui@acme.test", "Rui")
    found = await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)
    return contact, found.ticket, agent, other


async def test_accept_race_has_one_winner(store):
    _, ticket, agent, other = await _ticket(store)
    outcomes = {}

    async def accept(user) -> None:
        try:
            outcomes[user.id] = await store.accept_ticket(ticket.id, user.id)
        except Conflict as conflict:
            outcomes[user.id] = conflict

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept, agent)
        nursery.start_soon(accept, other)
    winners = [o for o in outcomes.values() if not isinstance(o, Conflict)]
    assert len(winners) == 1 and winners[0].status == "open"
    assert (await store.get_ticket(ticket.id)).user_id == winners[0].user_id
    # accepting again by the holder is fine
    assert (await store.accept_ticket(ticket.id, winners[0].user_id)).user_id == winners[0].user_id


async def test_transfer_close_reopen(store):
    contact, ticket, agent, other = await _ticket(store)
    await store.accept_ticket(ticket.id, agent.id)
    moved = await store.transfer_ticket(ticket.id, queue="sales")
    assert (moved.status, moved.user_id, moved.queue) == ("pending", None, "sales")
    moved = await store.transfer_ticket(ticket.id, user_id=other.id)
    assert (moved.status, moved.user_id) == ("open", other.id)
    closed = await store.close_ticket(ticket.id)
    assert closed.status == "closed" and closed.closed_at is not None
    assert await store.close_ticket(ticket.id) == closed  # idempotent
    with pytest.raises(Conflict, match="closed"):
        await store.accept_ticket(ticket.id, agent.id)
    with pytest.raises(Conflict, match="closed"):
        await store.transfer_ticket(ticket.id, queue="x")
    reopened = await store.reopen_ticket(ticket.id, user_id=agent.id)
    assert (reopened.status, reopened.user_id, reopened.closed_at) == ("open", agent.id, None)


async def test_reopen_refused_while_another_ticket_is_active(store):
    contact, ticket, _, _ = await _ticket(store)
    await store.close_ticket(ticket.id)
    newer = await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)
    assert newer.ticket.id != ticket.id
    with pytest.raises(Conflict, match=f"ticket {newer.ticket.id} is already active"):
        await store.reopen_ticket(ticket.id)
    assert (await store.get_ticket(ticket.id)).status == "closed"


async def test_messages_keep_arrival_order_and_bump_the_ticket(store):
    contact, ticket, _, _ = await _ticket(store)
    for i in range(5):
        await store.insert_message(message(contact, f"WA{i}", ticket_id=ticket.id, body=f"m{i}", sent_at=10.0 + i))
    await store.insert_message(message(contact, "OUT", ticket_id=ticket.id, body="reply", sent_at=20.0, from_me=True))
    stored = await store.list_messages(ticket.id)
    assert [m.wa_id for m in stored] == ["WA0", "WA1", "WA2", "WA3", "WA4", "OUT"]
    current = await store.get_ticket(ticket.id)
    assert (current.unread, current.last_message, current.last_message_at) == (5, "reply", 20.0)
    assert (await store.mark_ticket_read(ticket.id)).unread == 0


async def test_accept_reads_the_ticket_in_the_same_write(store):
    contact, ticket, agent, _ = await _ticket(store)
    for i in range(3):
        await store.insert_message(message(contact, f"WA{i}", ticket_id=ticket.id, sent_at=10.0 + i))
    assert (await store.get_ticket(ticket.id)).unread == 3
    accepted = await store.accept_ticket(ticket.id, agent.id)
    assert (accepted.status, accepted.user_id, accepted.unread) == ("open", agent.id, 0)
    assert await store.get_ticket(ticket.id) == accepted


async def test_unknown_ticket_is_not_found(store):
    await seed(store)
    with pytest.raises(NotFound, match="ticket 999"):
        await store.accept_ticket(999, 1)
    with pytest.raises(NotFound):
        await store.close_ticket(999)


async def test_duplicate_user_email_conflicts(store):
    await seed(store)
    await store.create_user("acme", "ana@acme.test", "Ana")
    with pytest.raises(Conflict, match="email"):
        await store.create_user("acme", "ana@acme.test", "Ana again")


async def test_open_conversation_upserts_the_contact_and_finds_or_creates_its_ticket_at_once(store):
    await seed(store)
    contact, found = await store.open_conversation(
        "acme", "s1", "5521900000077@s.whatsapp.net", "Bia", reopen_window=0)
    assert (contact.jid, contact.name) == ("5521900000077@s.whatsapp.net", "Bia")
    assert (found.outcome, found.ticket.contact_id, found.ticket.status) == ("created", contact.id, "pending")
    again, same = await store.open_conversation("acme", "s1", contact.jid, "", reopen_window=0)
    assert (again.id, again.name) == (contact.id, "Bia")  # an empty push name keeps the known one
    assert (same.outcome, same.ticket.id) == ("existing", found.ticket.id)
    with pytest.raises(ValueError, match="reopen_window"):
        await store.open_conversation("acme", "s1", contact.jid, reopen_window=-1)
