import pytest

from actors.store import Fence, FencedOut

from .helpers import seed


async def test_a_write_with_an_older_token_is_fenced_out(store):
    contact = await seed(store)
    agent = await store.create_user("acme", "ana@acme.test", "Ana")
    ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    resource = f"ticket:{ticket.id}"

    first = await store.accept_ticket(ticket.id, agent.id, fence=Fence(resource, 33))
    assert await store.fence_token(resource) == 33
    # the same holder writes again with the same token
    moved = await store.transfer_ticket(ticket.id, queue="sales", user_id=agent.id, fence=Fence(resource, 33))
    assert moved.queue == "sales"
    # a newer holder writes, then the paused old holder wakes up
    await store.transfer_ticket(ticket.id, queue="support", user_id=agent.id, fence=Fence(resource, 34))
    with pytest.raises(FencedOut) as refused:
        await store.close_ticket(ticket.id, fence=Fence(resource, 33))
    assert (refused.value.resource, refused.value.token, refused.value.current) == (resource, 33, 34)
    current = await store.get_ticket(ticket.id)
    assert (current.status, current.queue) == ("open", "support")
    assert first.user_id == agent.id
    assert await store.fence_token(resource) == 34


async def test_fences_are_per_resource(store):
    contact = await seed(store)
    other = await store.upsert_contact("acme", "2@s.whatsapp.net", "Eve")
    a = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    b = (await store.find_or_create_ticket("acme", "s1", other.id, reopen_window=0)).ticket
    await store.close_ticket(a.id, fence=Fence("ticket:a", 100))
    closed = await store.close_ticket(b.id, fence=Fence("ticket:b", 1))
    assert closed.status == "closed"
    assert await store.fence_token("ticket:missing") is None
