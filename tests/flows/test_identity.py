"""Identity, filters and calls over a real node: simulator → session → inbound → store → hub.

One customer is one contact and one ticket whichever form WhatsApp names them by (a LID with or
without the phone number alongside, the phone JID), including when the mapping is revealed after
both forms opened a conversation; status posts and newsletters follow the session's options;
calls are announced, and declined with a reply when the session says so.
"""

from __future__ import annotations

from actors.sessions import SessionOptions
from actors.store import TicketStatus

from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

LID = "81234567890123@lid"


async def _active(node) -> list:
    return [t for t in await node.store.list_tickets("acme") if t.status is not TicketStatus.CLOSED]


async def test_one_customer_is_one_ticket_whichever_form_and_a_late_mapping_merges(
    tmp_path, simulator, simulator_control, backend_dsn,
):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        pn = contact(7)
        await simulator_control.send_as_lid("s1", LID, "m1 hidden number", push_name="Ana")
        await simulator_control.send_message("s1", "m2 by phone", sender=pn, push_name="Ana")

        async def two_conversations():
            return len(await _active(node)) == 2

        await eventually(two_conversations)  # before the mapping: two forms, two conversations
        first = min(t.id for t in await _active(node))
        await simulator_control.reveal_lid("s1", LID, pn)

        async def merged():
            return await node.store.find_contact("acme", LID) is None and len(await _active(node)) == 1

        await eventually(merged)
        await simulator_control.send_as_lid("s1", LID, "m3 with number", pn=pn)
        await simulator_control.send_as_lid("s1", LID, "m4 hidden again")

        async def four_stored():
            return await node.store.count_messages("s1") == 4

        await eventually(four_stored)
        [ticket] = await _active(node)
        phone = await node.store.find_contact("acme", pn)
        assert ticket.id == first and ticket.contact_id == phone.id and phone.name == "Ana"
        bodies = [m.body for m in await node.store.list_messages(ticket.id)]
        assert sorted(bodies) == ["m1 hidden number", "m2 by phone", "m3 with number", "m4 hidden again"]
        [event] = recorder.of("contact.merged")
        assert (event["contact_id"], event["jid"], event["lid"]) == (phone.id, pn, LID)
        assert event["kept_tickets"] == {"s1": first}


async def test_a_lid_with_its_number_alongside_never_splits_the_customer(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        pn = contact(8)
        await simulator_control.send_as_lid("s1", LID, "with number", pn=pn)
        await simulator_control.send_as_lid("s1", LID, "hidden")  # resolved by the stored mapping
        await simulator_control.send_message("s1", "by phone", sender=pn)

        async def three_stored():
            return await node.store.count_messages("s1") == 3

        await eventually(three_stored)
        [ticket] = await node.store.list_tickets("acme")
        assert (await node.store.get_contact(ticket.contact_id)).jid == pn
        assert await node.store.lid_mapping("acme", LID) == pn


async def test_status_posts_and_newsletters_follow_the_sessions_options(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await node.store.upsert_tenant("acme", "Acme")
        await node.store.upsert_session("open", "acme", "desk open")
        await node.store.set_session_options("open", SessionOptions(status_broadcasts=True, newsletters=True).to_json())
        await provision(node, simulator_control, "default")
        await provision(node, simulator_control, "open")
        channel = "120363111111111111@newsletter"
        for session in ("default", "open"):
            await simulator_control.send_message(session, "my status", sender=contact(1), chat="status@broadcast")
            await simulator_control.send_message(session, "channel post", sender=channel, chat=channel)
            await simulator_control.send_message(session, "direct", sender=contact(3))

        async def stored():
            return (await node.store.count_messages("default"), await node.store.count_messages("open")) == (1, 3)

        await eventually(stored)
        assert (await simulator_control.account("default"))["queued"] == 0  # ignored ones are acknowledged
        tickets = await node.store.list_tickets("acme")
        jids = sorted([(t.session_id, (await node.store.get_contact(t.contact_id)).jid) for t in tickets])
        assert jids == [("default", contact(3)), ("open", channel), ("open", contact(1)), ("open", contact(3))]


async def test_calls_are_announced_and_declined_with_a_reply_when_the_session_says_so(
    tmp_path, simulator, simulator_control,
):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, recorder):
        await node.store.upsert_tenant("acme", "Acme")
        await node.store.upsert_session("strict", "acme", "desk strict")
        reply = "We cannot take calls here: please write."
        await node.store.set_session_options("strict", SessionOptions(reject_calls=True, call_reply=reply).to_json())
        await provision(node, simulator_control, "ringing")
        await provision(node, simulator_control, "strict")
        rings = await simulator_control.place_call("ringing", contact(4))
        declined = await simulator_control.place_call("strict", LID, caller_alt=contact(5), video=True)

        async def replied():
            return any(m.get("text") == reply for m in await simulator_control.sent("strict"))

        await eventually(replied)
        assert await simulator_control.rejected_calls("strict") == [{"call_id": declined, "call_from": LID}]
        assert await simulator_control.rejected_calls("ringing") == []
        [sent] = [m for m in await simulator_control.sent("strict") if m.get("text") == reply]
        assert sent["to"] == contact(5)
        events = {p["call_id"]: p for p in recorder.of("call.received")}
        assert (events[rings]["rejected"], events[rings]["caller"]) == (False, contact(4))
        assert (events[declined]["rejected"], events[declined]["caller"], events[declined]["video"]) == (
            True, contact(5), True)
        assert events[declined]["reply"] == reply
