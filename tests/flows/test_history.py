"""History sync over a real node and the simulator: imported within the session's date range
and chat limit, groups left out, never opening a ticket, idempotent with itself and live traffic."""

from __future__ import annotations

import time

from actors.sessions import SessionOptions
from actors.store import TicketStatus

from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

DAY = 86400.0


async def test_history_is_imported_as_closed_history_within_the_sessions_limits(
    tmp_path, simulator, simulator_control, backend_dsn,
):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        await node.store.set_session_options("s1", SessionOptions(history_days=7, history_chats=2).to_json())
        await provision(node, simulator_control, "s1")
        now = time.time()
        chats = [
            {"jid": contact(1), "name": "Ana", "messages": [
                {"ts": now - 2 * DAY, "text": "hello", "id": "A1"},
                {"ts": now - DAY, "text": "thanks!", "id": "A2", "from_me": True}]},
            {"jid": contact(2), "messages": [
                {"ts": now - 30 * DAY, "text": "too old", "id": "B0"}, {"ts": now - DAY, "text": "recent", "id": "B1"}]},
            {"jid": "120363000000000001@g.us", "messages": [{"ts": now - DAY, "text": "group", "sender": contact(4)}]},
            {"jid": contact(3), "messages": [{"ts": now - DAY, "text": "over the chat limit"}]},
        ]
        await simulator_control.history("s1", chats, progress=100)

        async def imported():
            return recorder.of("history.progress")

        [progress] = await eventually(imported)
        assert (progress["chats"], progress["messages"], progress["progress"]) == (2, 3, 100)
        tickets = await node.store.list_tickets("acme")
        jids = {t.id: (await node.store.get_contact(t.contact_id)).jid for t in tickets}
        assert sorted(jids.values()) == [contact(1), contact(2)]
        assert all(t.status is TicketStatus.CLOSED and t.unread == 0 for t in tickets)
        assert recorder.of("ticket.created") == []
        [ana] = [t for t in tickets if jids[t.id] == contact(1)]
        assert (await node.store.get_contact(ana.contact_id)).name == "Ana"
        assert [(m.wa_id, m.from_me) for m in await node.store.list_messages(ana.id)] == [("A1", False), ("A2", True)]

        # the same chunk again, and a live message WhatsApp also had in the history: nothing doubles
        await simulator_control.history("s1", chats[:1], progress=100)
        await simulator_control.send_message("s1", "hello", sender=contact(1), message_id="A1")
        await simulator_control.send_message("s1", "still there?", sender=contact(1), message_id="A3")

        async def live_stored():
            return len(recorder.of("history.progress")) == 2 and await node.store.count_messages("s1") == 4

        await eventually(live_stored)
        assert recorder.of("history.progress")[1]["messages"] == 0
        phone = await node.store.find_contact("acme", contact(1))
        live = await node.store.find_active_ticket("s1", phone.id)  # the customer wrote: now it is open
        assert "A3" in [m.wa_id for m in await node.store.list_messages(live.id)]
