"""The inbound flow over a real node: simulator → session → ticket actor → store → hub."""

from __future__ import annotations

from actors.flows import MESSAGE_CREATED, TICKET_CREATED
from actors.store import TicketStatus

from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

CONTACTS = 6
PER_CONTACT = 12


async def test_n_contacts_by_m_messages_exactly_once_in_order(tmp_path, simulator, simulator_control, backend_dsn):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        sent: dict[str, list[str]] = {contact(c): [] for c in range(CONTACTS)}
        for m in range(PER_CONTACT):
            for jid in sent:
                sent[jid].append(await simulator_control.send_message("s1", f"m{m}", sender=jid, push_name="Ana"))
        total = CONTACTS * PER_CONTACT

        async def all_stored():
            return await node.store.count_messages("s1") == total

        await eventually(all_stored)
        tickets = await node.store.list_tickets("acme")
        assert len(tickets) == CONTACTS
        for ticket in tickets:
            jid = (await node.store.get_contact(ticket.contact_id)).jid
            stored = await node.store.list_messages(ticket.id, limit=1000)
            assert [m.wa_id for m in stored] == sent[jid]  # per-ticket order = arrival order
            assert ticket.status is TicketStatus.PENDING and ticket.unread == PER_CONTACT
            assert ticket.last_message == f"m{PER_CONTACT - 1}"
        created = recorder.of(MESSAGE_CREATED)
        assert sorted(p["wa_id"] for p in created) == sorted(i for ids in sent.values() for i in ids)
        assert len(recorder.of(TICKET_CREATED)) == CONTACTS


async def test_broadcast_ignored_and_groups_follow_the_session(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "no-groups")
        await provision(node, simulator_control, "groups", allow_groups=True)
        group = "120363000000000001@g.us"
        for session in ("no-groups", "groups"):
            await simulator_control.send_message(session, "status", sender=contact(1), chat="status@broadcast")
            await simulator_control.send_message(session, "in group", sender=contact(2), chat=group)
            await simulator_control.send_message(session, "direct", sender=contact(3))

        async def both_direct_stored():
            return (await node.store.count_messages("no-groups"), await node.store.count_messages("groups")) == (1, 2)

        await eventually(both_direct_stored)
        account = await simulator_control.account("no-groups")
        assert account["queued"] == 0  # dropped messages are acknowledged all the same
        tickets = await node.store.list_tickets("acme")
        jids = sorted([(t.session_id, (await node.store.get_contact(t.contact_id)).jid) for t in tickets])
        assert jids == [("groups", group), ("groups", contact(3)), ("no-groups", contact(3))]
