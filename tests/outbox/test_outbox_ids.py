"""WhatsApp's ids kept, and sends whose outcome is unknown never re-sent silently.

Over a real node, simulator and store (SQLite and PostgreSQL): every sent row records the id
WhatsApp (the simulator) gave it, receipts carrying that id move the agent's message through
delivered → read → played, and a customer's quote of an agent message resolves to it.

The outcome classification uses stand-in session actors (what a driver answers when a worker
dies or a connection stalls mid-send), with the real store, actor system and outbox service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from actors.drivers import SendResult
from actors.flows import MESSAGE_CREATED, MESSAGE_SEND_UNKNOWN, MESSAGE_UPDATED, GetJob, RetryJob
from actors.outbox import MediaFile, OutboxDeps, OutboxService, Send
from actors.sessions import RequestFailed, SendText, SessionStatus, StatusBoard, tenant_spec, tenants_spec
from actors.store import DeliveryStatus, JobStatus, Queue, SqliteBackend, Store, open_store
from supervisor import Actor, ActorRef, ChildSpec, RestartLimiter, open_actor_system
from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision


async def test_whatsapps_ids_are_recorded_receipts_move_ticks_and_quotes_resolve(
        tmp_path, simulator, simulator_control, backend_dsn):
    async with flow_node(flow_settings(tmp_path, simulator.url, backend_dsn)) as (node, recorder):
        await provision(node, simulator_control, "s1")
        store, outbox = node.store, node.system.ref("/services/outbox")
        customer = contact(7)
        await simulator_control.send_message("s1", "oi", sender=customer)
        ticket_id = (await eventually(lambda: _first(recorder.of(MESSAGE_CREATED))))["ticket_id"]
        voice = tmp_path / "voice.ogg"
        voice.write_bytes(b"OggS voice note")
        text = (await outbox.ask(Send("acme", "s1", "k-text", customer, "your order shipped", ticket_id))).item
        audio = (await outbox.ask(Send("acme", "s1", "k-voice", customer, "", ticket_id,
                                       MediaFile(str(voice), "audio", "audio/ogg")))).item

        async def settled():
            jobs = [await store.get_job(Queue.OUTBOX, item.id) for item in (text, audio)]
            wanted = (DeliveryStatus.READ, DeliveryStatus.PLAYED)
            return jobs if [job.delivery for job in jobs] == list(wanted) else None

        text_job, audio_job = await eventually(settled)
        sent = await simulator_control.sent("s1")
        assert [entry["id"] for entry in sent] == [text_job.wa_id, audio_job.wa_id]  # WhatsApp's ids, recorded
        assert text_job.wa_id != text.message_id and audio_job.wa_id != audio.message_id

        async def ticked(wa_id, status):
            stored = await store.get_message("s1", wa_id)
            return stored if stored is not None and stored.status is status else None

        text_message = await eventually(lambda: ticked(text_job.wa_id, DeliveryStatus.READ))
        audio_message = await eventually(lambda: ticked(audio_job.wa_id, DeliveryStatus.PLAYED))
        assert text_message.from_me and text_message.body == "your order shipped"
        assert audio_message.media_type == "audio" and audio_message.ticket_id == ticket_id
        # published as they happen: created (sent, or further when a receipt beat the record), then each
        # receipt's step once, in order, up to played
        seen = [p["status"] for p in recorder.of(MESSAGE_CREATED) if p["wa_id"] == audio_job.wa_id]
        seen += [p["status"] for p in recorder.of(MESSAGE_UPDATED) if p["wa_id"] == audio_job.wa_id]
        steps = ["sent", "delivered", "read", "played"]
        assert seen == steps[steps.index(seen[0]):]

        quote_id = await simulator_control.send_message("s1", "great, thanks", sender=customer,
                                                        quoted_id=text_job.wa_id)
        reply = await eventually(lambda: store.get_message("s1", quote_id))
        assert reply.quoted_wa_id == text_job.wa_id
        quoted = await store.get_message("s1", reply.quoted_wa_id)  # the quote resolves to the agent's message
        assert (quoted.id, quoted.from_me, quoted.ticket_id) == (text_message.id, True, reply.ticket_id)


SEND_TIMEOUT = 0.5
"""The stand-in outbox's send timeout (seconds)."""


async def _first(payloads: list[dict]) -> dict | None:
    return payloads[0] if payloads else None


@attrs.define(eq=False)
class Events:
    seen: list[tuple[str, dict]] = attrs.field(factory=list)

    def emit(self, tenant_id, type, payload, *, ticket_id=None):
        self.seen.append((type, payload))

    def of(self, type: str) -> list[dict]:
        return [payload for kind, payload in self.seen if kind == type]


class StandInSession(Actor):
    """Answers the first send with ``first`` (a reply, or "hang": an answer that comes after the
    outbox's send timeout), later ones as sent."""

    def __init__(self, first) -> None:
        self.first = first
        self.sends: list[str] = []

    async def receive(self, message):
        assert isinstance(message, SendText)
        self.sends.append(message.text)
        if len(self.sends) == 1:
            if self.first == "hang":
                await trio.sleep(2 * SEND_TIMEOUT)
                return SendResult("WA-too-late", trio.current_time())
            return self.first
        return SendResult(f"WA-{len(self.sends)}", trio.current_time())


@asynccontextmanager
async def running_outbox(tmp_path, session: Actor, events: Events, *, connected: bool = True
                         ) -> AsyncIterator[tuple[Store, ActorRef, StatusBoard]]:
    """A store, the actor system with ``session`` as s1 (connected unless told), and the outbox service."""
    async with open_store(SqliteBackend(tmp_path / "z.db")) as store:
        await store.upsert_tenant("acme", "Acme")
        board = StatusBoard(debounce=0.05)
        deps = OutboxDeps(store=store, board=board, attempts=3, pacing_interval=0.0, pacing_jitter=0.0,
                          publisher=events, retry_base=0.05, send_timeout=SEND_TIMEOUT)
        async with open_actor_system([tenants_spec()]) as system:
            await system.supervisor("/tenants").start_child(tenant_spec("acme", RestartLimiter(rate=10, burst=10)))
            await system.supervisor("/tenants/acme/sessions").start_child(ChildSpec("s1", lambda: session))
            if connected:
                board.set("s1", "acme", SessionStatus.CONNECTED)
            yield store, await system.supervisor("/").start_child(ChildSpec("outbox", lambda: OutboxService(deps))), board


async def _job_in(outbox, item_id: int, *statuses: JobStatus):
    with trio.fail_after(20):
        while (job := await outbox.ask(GetJob(item_id))).status not in statuses:
            await trio.sleep(0.02)
    return job


@pytest.mark.parametrize("first, reason", [
    ("hang", "AskTimeout"),  # no answer from the session within the send timeout
    (RequestFailed("RequestTimeoutError", "no answer to send within 30s"), "RequestTimeoutError"),
    (RequestFailed("RequestInterruptedError", "connection ended during send"), "RequestInterruptedError"),
    (RequestFailed("WorkerDied", "neonize worker 4242 died (killed by SIGKILL)"), "WorkerDied"),
])
async def test_a_send_handed_over_without_an_answer_is_unknown_until_an_admin_retries(tmp_path, first, reason):
    events, session = Events(), StandInSession(first)
    async with running_outbox(tmp_path, session, events) as (store, outbox, _):
        doubtful = (await outbox.ask(Send("acme", "s1", "k1", contact(1), "first"))).item
        following = (await outbox.ask(Send("acme", "s1", "k2", contact(1), "second"))).item
        job = await _job_in(outbox, doubtful.id, JobStatus.UNKNOWN)
        assert reason in job.last_error and job.wa_id is None and job.attempts == 1
        assert [p["id"] for p in events.of(MESSAGE_SEND_UNKNOWN)] == [doubtful.id]
        assert (await _job_in(outbox, following.id, JobStatus.DONE)).wa_id == "WA-2"  # the line moves on
        await trio.sleep(0.3)  # retry_base is 0.05: a retry, had one been scheduled, would have run
        assert session.sends == ["first", "second"]  # the doubtful one was not sent again
        assert [j.id for j in await store.list_jobs(Queue.OUTBOX, JobStatus.UNKNOWN)] == [doubtful.id]

        retried = await outbox.ask(RetryJob(doubtful.id))
        assert (retried.status, retried.attempts) == (JobStatus.QUEUED, 0)
        done = await _job_in(outbox, doubtful.id, JobStatus.DONE)
        assert session.sends == ["first", "second", "first"] and done.wa_id == "WA-3"
        assert (await store.get_message("s1", "WA-3")).body == "first"


async def test_a_send_whatsapp_certainly_lacks_is_retried(tmp_path):
    events, session = Events(), StandInSession(RequestFailed("NotConnectedError", "no open connection"))
    async with running_outbox(tmp_path, session, events) as (store, outbox, _):
        item = (await outbox.ask(Send("acme", "s1", "k1", contact(1), "first"))).item
        done = await _job_in(outbox, item.id, JobStatus.DONE)
        assert (done.attempts, done.wa_id, session.sends) == (2, "WA-2", ["first", "first"])
        assert events.of(MESSAGE_SEND_UNKNOWN) == []


async def test_a_row_left_sending_by_a_dead_process_is_unknown_at_start(tmp_path):
    async with open_store(SqliteBackend(tmp_path / "z.db")) as store:
        await store.upsert_tenant("acme", "Acme")
        item = (await store.enqueue_outbox("acme", "s1", "k1", contact(1), {"text": "in flight"})).item
        await store.claim_outbox()
        await store.outbox_sending(item.id)  # then the process died
    events, session = Events(), StandInSession(SendResult("WA-X", 0.0))
    async with running_outbox(tmp_path, session, events) as (store, outbox, _):
        job = await outbox.ask(GetJob(item.id))
        assert job.status is JobStatus.UNKNOWN and "zapvisor stopped" in job.last_error
        assert [p["id"] for p in events.of(MESSAGE_SEND_UNKNOWN)] == [item.id]
        await trio.sleep(0.3)
        assert session.sends == []


async def test_a_session_taken_over_mid_send_leaves_that_send_unknown(tmp_path):
    """Another node was sending for s1 when it died; this node takes s1 over: the row the dead
    node left ``sending`` must not hold s1's line for ever, nor be sent again."""
    events, session = Events(), StandInSession(SendResult("WA-1", 0.0))
    async with running_outbox(tmp_path, session, events, connected=False) as (store, outbox, board):
        orphan = (await store.enqueue_outbox("acme", "s1", "k1", contact(1), {"text": "orphan"})).item
        await store.claim_outbox()
        await store.outbox_sending(orphan.id)  # the other node's send, in flight when it died
        after = (await outbox.ask(Send("acme", "s1", "k2", contact(1), "after"))).item
        board.set("s1", "acme", SessionStatus.CONNECTED)  # the session is now ours
        assert (await _job_in(outbox, after.id, JobStatus.DONE)).wa_id == "WA-1"
        job = await outbox.ask(GetJob(orphan.id))
        assert job.status is JobStatus.UNKNOWN and "previous owner" in job.last_error
        assert session.sends == ["after"] and [p["id"] for p in events.of(MESSAGE_SEND_UNKNOWN)] == [orphan.id]
