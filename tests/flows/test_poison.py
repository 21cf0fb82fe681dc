"""Poison through the simulator's inbound path (DESIGN §10), over a real node, the real simulator
process and a real store (SQLite and PostgreSQL).

Simulated contacts send what has broken text handling before — lone surrogates, NUL, 4-byte emoji,
RTL and zero-width marks, overlong strings — as message text, as their contact name and as a media
caption. What WhatsApp sends is never refused: every message is stored (unstorable characters as
U+FFFD, the raw form kept), acknowledged once (never re-delivered), the session stays connected
without a restart, and a bystander session keeps delivering inbound and outbound throughout. (The
outbound poison — a row whose store write fails — is tests/outbox/test_outbox_quarantine.py.)
"""

from __future__ import annotations

import json

import trio

from actors.outbox import Send
from actors.sessions import SessionStatus
from actors.store import JobStatus, Queue
from supervisor import EventKind
from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

#: name -> (what the contact sends, what is stored). Valid text is stored as sent.
POISON = {
    "lone high surrogate": ("hi \ud800 there", "hi \ufffd there"),
    "lone low surrogate": ("\udc00", "\ufffd"),
    "nul": ("nul\x00inside", "nul\ufffdinside"),
    "surrogate and nul": ("\x00\udbff\x00", "\ufffd\ufffd\ufffd"),
    "4-byte emoji": ("\U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467", None),
    "rtl marks": ("\u202eevil\u202c \u200f\u05e9\u05dc\u05d5\u05dd\u200e", None),
    "zero width": ("a\u200bb\u200cc\u200d\ufeff", None),
    "overlong": ("\U0001f600" * 20_000 + "x" * 100_000, None),
}

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))

BYSTANDER_PERIOD = 0.05
"""Seconds between the bystander's rounds (one inbound and one outbound message each)."""


def _stored_as(sent: str, expected: str | None) -> tuple[str, str | None]:
    """(body or name, its raw form) the store must hold for ``sent``."""
    return (sent, None) if expected is None else (expected, json.dumps(sent))


async def test_poison_from_contacts_is_stored_acked_and_the_sessions_keep_flowing(
    tmp_path, simulator, simulator_control, backend_dsn,
):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "victim")
        await provision(node, simulator_control, "bystander")
        outbox = node.system.ref("/services/outbox")
        before = await simulator_control.stats()
        bystander_in: list[str] = []
        bystander_out: list[int] = []
        poison_done = trio.Event()

        async def bystander() -> None:
            """Inbound and outbound on the other session, every round, until the poison is all in."""
            n = 0
            while not poison_done.is_set() or n < 3:
                bystander_in.append(await simulator_control.send_message(
                    "bystander", f"in {n}", sender=contact(900), push_name="Bea"))
                enqueued = await outbox.ask(Send("acme", "bystander", f"out-{n}", contact(900), f"out {n}"))
                bystander_out.append(enqueued.item.id)
                n += 1
                await trio.sleep(BYSTANDER_PERIOD)

        sent: dict[str, tuple[str, str, str | None]] = {}  # message id -> (sender, text, expected)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander)
            for i, (text, expected) in enumerate(POISON.values()):
                # the poison as the message text and the contact's name...
                wa_id = await simulator_control.send_message("victim", text, sender=contact(i), push_name=text)
                sent[wa_id] = (contact(i), text, expected)
                # ...and as a media caption, from a contact whose name is the poison too
                wa_id = await simulator_control.send_message(
                    "victim", text, sender=contact(100 + i), push_name=text, media=PNG, media_kind="image",
                    mimetype="image/png")
                sent[wa_id] = (contact(100 + i), text, expected)

            async def all_stored():
                return all([await node.store.get_message("victim", wa_id) for wa_id in sent])

            await eventually(all_stored, timeout=60)
            poison_done.set()

        for wa_id, (sender, text, expected) in sent.items():
            stored = await node.store.get_message("victim", wa_id)
            assert (stored.body, stored.raw_body) == _stored_as(text, expected)
            ticket = await node.store.get_ticket(stored.ticket_id)
            assert ticket.last_message == stored.body
            who = await node.store.get_contact(stored.contact_id)
            assert (who.jid, who.name, who.raw_name) == (sender, *_stored_as(text, expected))
        assert await node.store.count_messages("victim") == len(sent)  # each stored once

        async def media_downloaded():
            jobs = await node.store.list_jobs(Queue.MEDIA)
            return len(jobs) == len(POISON) and all(j.status is JobStatus.DONE for j in jobs)

        await eventually(media_downloaded, timeout=30)  # the captions did not hold their downloads up

        async def acked():  # the simulator holds nothing for the victim any more
            return (await simulator_control.account("victim"))["queued"] == 0

        await eventually(acked)
        after = await simulator_control.stats()
        assert after.messages_redelivered == before.messages_redelivered  # acked once, never re-delivered

        # the victim never left "connected" and nothing restarted anywhere: no session, no service, no root
        assert node.board.get("victim").status is SessionStatus.CONNECTED
        incidents = [e for e in node.system.history()
                     if e.kind in (EventKind.RESTARTED, EventKind.INTENSITY_EXCEEDED, EventKind.SUSPENDED)
                     or (e.kind is EventKind.EXITED and not e.reason.startswith("normal:"))]  # jobs end normally
        assert incidents == []

        async def bystander_flowed():
            stored = [await node.store.get_message("bystander", wa_id) for wa_id in bystander_in]
            jobs = [await node.store.get_job(Queue.OUTBOX, job_id) for job_id in bystander_out]
            return all(stored) and all(job.status is JobStatus.DONE for job in jobs)

        await eventually(bystander_flowed)
        assert len(bystander_in) >= 3 and len(bystander_out) == len(bystander_in)
        sent_by_bystander = [entry["text"] for entry in await simulator_control.sent("bystander")]
        assert sent_by_bystander == [f"out {n}" for n in range(len(bystander_out))]


async def test_a_message_no_store_can_key_is_quarantined_and_the_rest_of_its_batch_stored(
    tmp_path, simulator, simulator_control, backend_dsn, caplog,
):
    """The one inbound content a store must refuse — a key longer than any unique index holds
    (WhatsApp never sends one; the simulator can) — is logged in full and acknowledged; the
    messages around it are stored and the session carries on without a restart."""
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    unkeyable = "9" * 600 + "@s.whatsapp.net"
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "victim")
        ids = [await simulator_control.send_message("victim", "before", sender=contact(1)),
               await simulator_control.send_message("victim", "poison", sender=unkeyable, push_name="\ud800"),
               await simulator_control.send_message("victim", "after", sender=contact(2))]

        async def around_stored():
            return all([await node.store.get_message("victim", wa_id) for wa_id in (ids[0], ids[2])])

        await eventually(around_stored)

        async def acked():
            return (await simulator_control.account("victim"))["queued"] == 0

        await eventually(acked)
        assert await node.store.get_message("victim", ids[1]) is None
        assert await node.store.count_messages("victim") == 2
        quarantined = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
        assert len(quarantined) == 1 and ids[1] in quarantined[0] and unkeyable in quarantined[0]
        assert node.board.get("victim").status is SessionStatus.CONNECTED
        assert [e for e in node.system.history()
                if e.kind in (EventKind.RESTARTED, EventKind.INTENSITY_EXCEEDED)
                or (e.kind is EventKind.EXITED and not e.reason.startswith("normal:"))] == []
        late = await simulator_control.send_message("victim", "later", sender=contact(3))

        async def late_stored():
            return await node.store.get_message("victim", late)

        await eventually(late_stored)
