"""Ticket actors on a real node: accept race, reopen window, passivation and rebuild."""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

from actors.store import TicketStatus
from actors.tickets import Accept, Close, GetTicket, Reopen, TicketRefused, Transfer
from actors.tickets._ticket import LOCK_WAIT
from supervisor import AskTimeout
from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision


async def _one_ticket(node, control, session="s1", sender=contact(1), text="oi"):
    await control.send_message(session, text, sender=sender)

    async def ticket():
        tickets = await node.store.list_tickets("acme")
        return tickets[0] if tickets else None

    return await eventually(ticket)


@contextlib.asynccontextmanager
async def _node_with_one_ticket(tmp_path, simulator, control, **overrides):
    """A flow node (SQLite) with session s1 connected and contact 1's ticket open: (node, ticket)."""
    async with flow_node(flow_settings(tmp_path, simulator.url, **overrides)) as (node, _):
        await provision(node, control, "s1")
        yield node, await _one_ticket(node, control)


async def _count(node, n, session="s1"):
    async def stored():
        return await node.store.count_messages(session) == n

    await eventually(stored)


async def test_accept_race_one_wins_one_conflict(tmp_path, simulator, simulator_control, backend_dsn):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        ticket = await _one_ticket(node, simulator_control)
        ana = await node.store.create_user("acme", "ana@acme.test", "Ana")
        rui = await node.store.create_user("acme", "rui@acme.test", "Rui")
        directory = node.flows.directory
        replies = {}

        async def accept(user):
            replies[user.id] = await directory.ask("acme", ticket.id, Accept(user.id))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept, ana)
            nursery.start_soon(accept, rui)
        refused = [r for r in replies.values() if isinstance(r, TicketRefused)]
        won = [r for r in replies.values() if not isinstance(r, TicketRefused)]
        assert len(refused) == 1 and refused[0].code == "conflict"
        assert len(won) == 1 and won[0].status is TicketStatus.OPEN
        assert (await node.store.get_ticket(ticket.id)).user_id == won[0].user_id
        moved = await directory.ask("acme", ticket.id, Transfer(queue="sales"))
        assert (moved.queue, moved.status, moved.user_id) == ("sales", TicketStatus.PENDING, None)
        assert any(p["id"] == ticket.id and p["status"] == "open" for p in recorder.of("ticket.updated"))


async def test_reopen_within_window_else_new_ticket(tmp_path, simulator, simulator_control):
    async with _node_with_one_ticket(tmp_path, simulator, simulator_control,
                                     tickets__reopen_window="1.0") as (node, first):
        directory = node.flows.directory
        closed = await directory.ask("acme", first.id, Close())
        assert closed.status is TicketStatus.CLOSED
        await simulator_control.send_message("s1", "again", sender=contact(1))  # within the window
        await _count(node, 2)
        reopened = await directory.ask("acme", first.id, GetTicket())
        assert reopened.status is TicketStatus.PENDING
        assert [m.body for m in await node.store.list_messages(first.id)] == ["oi", "again"]
        await directory.ask("acme", first.id, Close())
        await trio.sleep(1.2)  # past the window (row timestamps are wall-clock)
        await simulator_control.send_message("s1", "much later", sender=contact(1))
        await _count(node, 3)
        tickets = await node.store.list_tickets("acme")
        assert len(tickets) == 2
        newest = next(t for t in tickets if t.id != first.id)
        assert newest.status is TicketStatus.PENDING
        assert [m.body for m in await node.store.list_messages(newest.id)] == ["much later"]
        assert (await node.store.get_ticket(first.id)).status is TicketStatus.CLOSED
        refused = await directory.ask("acme", first.id, Reopen())
        assert isinstance(refused, TicketRefused) and refused.code == "conflict"


async def test_passivated_when_idle_and_rebuilt_from_the_store(tmp_path, simulator, simulator_control):
    async with _node_with_one_ticket(tmp_path, simulator, simulator_control,
                                     tickets__idle_timeout="0.3") as (node, ticket):
        directory = node.flows.directory
        assert directory.running("acme") == (str(ticket.id),)

        async def passivated():
            return directory.running("acme") == ()

        await eventually(passivated, timeout=10)
        await simulator_control.send_message("s1", "back", sender=contact(1))
        await _count(node, 2)
        rebuilt = await directory.ask("acme", ticket.id, GetTicket())
        assert (rebuilt.unread, rebuilt.last_message) == (2, "back")
        assert directory.running("acme") == (str(ticket.id),)
        missing = await directory.ask("acme", 999_999, GetTicket())
        assert isinstance(missing, TicketRefused) and missing.code == "not_found"


async def test_a_ticket_asked_to_passivate_stays_while_it_is_not_idle(tmp_path, simulator, simulator_control):
    async with _node_with_one_ticket(tmp_path, simulator, simulator_control,
                                     tickets__idle_timeout="60") as (node, ticket):
        directory = node.flows.directory
        assert directory.offer_passivation() == 1
        # handled in mailbox order: by the time GetTicket is answered, the offer was declined
        assert (await directory.ask("acme", ticket.id, GetTicket())).id == ticket.id
        assert directory.running("acme") == (str(ticket.id),)


async def _tickets(node, control, count, session="s1"):
    """One ticket per contact 1..count (each sends one message), sorted by id."""
    for i in range(1, count + 1):
        await control.send_message(session, f"oi {i}", sender=contact(i))

    async def all_there():
        tickets = await node.store.list_tickets("acme")
        return sorted(tickets, key=lambda t: t.id) if len(tickets) == count else None

    return await eventually(all_there)


async def test_ask_many_replies_in_request_order_and_refuses_an_unknown_ticket(
        tmp_path, simulator, simulator_control):
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, _):
        await provision(node, simulator_control, "s1")
        first, second = await _tickets(node, simulator_control, 2)
        replies = await node.flows.directory.ask_many(
            "acme", [(second.id, GetTicket()), (999_999, GetTicket()), (first.id, GetTicket())])
        assert [replies[0].id, replies[2].id] == [second.id, first.id]
        assert isinstance(replies[1], TicketRefused) and replies[1].code == "not_found"
        assert await node.flows.directory.ask_many("acme", []) == []


async def test_ask_many_tickets_handle_their_messages_concurrently(tmp_path, simulator, simulator_control):
    """Each Accept waits LOCK_WAIT for a lock another node holds: together they take one
    LOCK_WAIT, not one each."""
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, _):
        await provision(node, simulator_control, "s1")
        tickets = await _tickets(node, simulator_control, 3)
        ana = await node.store.create_user("acme", "ana@acme.test", "Ana")
        for ticket in tickets:
            await node.bus.acquire(f"ticket:{ticket.id}", 60, owner="node-2")
        started = trio.current_time()
        replies = await node.flows.directory.ask_many("acme", [(t.id, Accept(ana.id)) for t in tickets])
        elapsed = trio.current_time() - started
        assert [(r.code, t.id) for r, t in zip(replies, tickets)] == [("busy", t.id) for t in tickets]
        assert LOCK_WAIT <= elapsed < 2 * LOCK_WAIT  # one after the other: 3 * LOCK_WAIT


async def test_ask_many_times_out_with_ask_timeout(tmp_path, simulator, simulator_control):
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, _):
        await provision(node, simulator_control, "s1")
        first, second = await _tickets(node, simulator_control, 2)
        ana = await node.store.create_user("acme", "ana@acme.test", "Ana")
        await node.bus.acquire(f"ticket:{first.id}", 60, owner="node-2")
        started = trio.current_time()
        with pytest.raises(AskTimeout, match="Accept, GetTicket"):
            await node.flows.directory.ask_many(
                "acme", [(second.id, GetTicket()), (first.id, Accept(ana.id))], timeout=0.5)
        assert 0.5 <= trio.current_time() - started < LOCK_WAIT


async def test_ask_many_redelivers_to_a_fresh_incarnation_when_the_actor_stopped_first(
        tmp_path, simulator, simulator_control):
    """A message queued behind the one in hand when the actor stops is not lost: the next
    incarnation (rebuilt from the store) answers it."""
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, _):
        await provision(node, simulator_control, "s1")
        first, second = await _tickets(node, simulator_control, 2)
        directory = node.flows.directory
        ana = await node.store.create_user("acme", "ana@acme.test", "Ana")
        path = f"/tenants/acme/tickets/{first.id}"
        await node.bus.acquire(f"ticket:{first.id}", 60, owner="node-2")
        in_hand = node.system.ref(path).request_nowait(Accept(ana.id))  # held for LOCK_WAIT
        replies = []

        async def gather():
            replies.extend(await directory.ask_many("acme", [(first.id, GetTicket()), (second.id, GetTicket())]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(gather)
            with trio.fail_after(10):
                await trio.testing.wait_all_tasks_blocked()
            assert node.system.tree().find(path).mailbox_depth == 1  # GetTicket, behind the Accept
            await node.system.supervisor("/tenants/acme/tickets").terminate_child(str(first.id))
            assert in_hand.result().code == "busy"  # the stopping actor finished what it had in hand
        assert [reply.id for reply in replies] == [first.id, second.id]
        assert str(first.id) in directory.running("acme")
