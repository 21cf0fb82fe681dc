"""Every message kind and operation, end to end: simulator → session → store → published events."""

from __future__ import annotations

import hashlib

from actors.drivers import PLACEHOLDER_TEXT, MessageKind
from actors.flows import DELETED_TEXT, MESSAGE_CREATED, MESSAGE_UPDATED, TICKET_UPDATED
from actors.simulator._kinds import SAMPLES
from actors.store import TicketStatus

from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

ANA = contact(1)


async def _stored(node, count: int, session: str = "s1"):
    async def enough():
        return await node.store.count_messages(session) >= count

    await eventually(enough)
    (ticket,) = await node.store.list_tickets("acme")
    return ticket, await node.store.list_messages(ticket.id, limit=1000)


async def test_every_kind_is_stored_with_its_payload_and_a_readable_body(tmp_path, simulator, simulator_control):
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, recorder):
        await provision(node, simulator_control, "s1")
        sent = {}
        for kind, (text, payload) in SAMPLES.items():
            sent[kind] = await simulator_control.send_message("s1", text, sender=ANA, kind=kind, payload=payload)
        ticket, stored = await _stored(node, len(SAMPLES))
        by_id = {m.wa_id: m for m in stored}
        for kind, wa_id in sent.items():
            message = by_id[wa_id]
            text, payload = SAMPLES[kind]
            assert message.kind == kind and (message.payload or {}) == payload
            assert message.body  # never empty: the text, else a summary
            if text:
                assert message.body == text
        assert by_id[sent[MessageKind.LOCATION]].body == "📍 location: Office - Av. Rio Branco 1 (-22.9068, -43.1729)"
        assert by_id[sent[MessageKind.CONTACTS]].body == "👤 contact: Ana Silva +55 21 99999-0000"
        assert by_id[sent[MessageKind.PTT]].body == "🎤 voice note (0:07)"
        assert by_id[sent[MessageKind.UNKNOWN]].body == "❔ unsupported message (groupInviteMessage)"
        created = {p["wa_id"]: p for p in recorder.of(MESSAGE_CREATED)}
        assert created[sent[MessageKind.POLL]]["kind"] == "poll"
        assert created[sent[MessageKind.POLL]]["payload"]["options"] == ["morning", "afternoon"]
        assert ticket.unread == len(SAMPLES)


async def test_operations_change_their_target_and_never_reopen_a_ticket(tmp_path, simulator, simulator_control):
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, recorder):
        await provision(node, simulator_control, "s1")
        first = await simulator_control.send_message("s1", "helo", sender=ANA)
        other = await simulator_control.send_message("s1", "my card number is 1234", sender=ANA)
        ticket, _ = await _stored(node, 2)
        await node.store.close_ticket(ticket.id)
        updates_before = len(recorder.of(TICKET_UPDATED))
        await simulator_control.react("s1", first, "👍", sender=ANA)
        await simulator_control.edit("s1", first, "hello", sender=ANA)
        await simulator_control.revoke("s1", other, sender=ANA)
        await simulator_control.react("s1", first, "❤️", sender=ANA)  # changed
        await simulator_control.react("s1", "NOT-STORED", "👍", sender=ANA)  # dropped

        async def applied():
            changes = [p["change"] for p in recorder.of(MESSAGE_UPDATED) if "change" in p]
            return changes == ["reaction", "edited", "deleted", "reaction"]

        await eventually(applied)
        after = await node.store.get_ticket(ticket.id)
        assert after.status is TicketStatus.CLOSED and after.unread == 0  # no reopen, nothing unread
        assert len(recorder.of(TICKET_UPDATED)) == updates_before
        assert await node.store.count_messages("s1") == 2  # operations are no messages
        edited = await node.store.get_message("s1", first)
        assert (edited.body, edited.reactions) == ("hello", {ANA: "❤️"})
        assert [v.body for v in await node.store.message_versions(edited.id)] == ["helo"]
        deleted = await node.store.get_message("s1", other)
        assert deleted.deleted_at is not None and deleted.body == "my card number is 1234"  # kept for admins
        updates = [p for p in recorder.of(MESSAGE_UPDATED) if "change" in p]
        assert updates[1]["previous_body"] == "helo" and updates[1]["body"] == "hello"
        assert updates[2]["deleted"] and updates[2]["body"] == DELETED_TEXT  # agents see it deleted
        assert updates[3]["reaction"] == {"sender": ANA, "emoji": "❤️"}


async def test_a_poll_vote_names_the_options_of_the_stored_poll(tmp_path, simulator, simulator_control):
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, _):
        await provision(node, simulator_control, "s1")
        text, payload = SAMPLES[MessageKind.POLL]
        poll = await simulator_control.send_message("s1", text, sender=ANA, kind="poll", payload=payload, from_me=True)
        hashed = hashlib.sha256(b"afternoon").hexdigest()  # what neonize decrypts: the option's hash
        vote = await simulator_control.send_message("s1", sender=ANA, kind="poll_vote", target_id=poll,
                                                    payload={"selected": [hashed], "encrypted": False})
        _, stored = await _stored(node, 2)
        (voted,) = [m for m in stored if m.wa_id == vote]
        assert voted.payload["selected"] == ["afternoon"] and voted.body == "🗳 poll vote: afternoon"


async def test_an_undecryptable_message_waits_in_place_until_it_is_resent(tmp_path, simulator, simulator_control):
    async with flow_node(flow_settings(tmp_path, simulator.url)) as (node, recorder):
        await provision(node, simulator_control, "s1")
        before = await simulator_control.send_message("s1", "first", sender=ANA)
        lost = await simulator_control.undecryptable("s1", sender=ANA)
        _, stored = await _stored(node, 2)
        assert [(m.wa_id, m.kind, m.body) for m in stored] == [
            (before, "text", "first"), (lost, "undecryptable", PLACEHOLDER_TEXT)]
        await simulator_control.send_message("s1", "second, re-sent", sender=ANA, message_id=lost)

        async def filled():
            return (await node.store.get_message("s1", lost)).kind == "text"

        await eventually(filled)
        _, stored = await _stored(node, 2)
        assert [(m.wa_id, m.body) for m in stored] == [(before, "first"), (lost, "second, re-sent")]
        (resent,) = [p for p in recorder.of(MESSAGE_UPDATED) if p.get("change") == "resent"]
        assert resent["wa_id"] == lost and resent["body"] == "second, re-sent"
