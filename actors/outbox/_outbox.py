"""The :class:`OutboxService` (``/services/outbox``): durable, ordered, paced sends.

A send request becomes an outbox row first (:class:`Send`, idempotent by key); the row's
message id is fixed then, and every attempt sends with it, so a retry — after a lost answer,
a crash, a kill -9 — can never produce a second WhatsApp message (WhatsApp, and the
simulator, dedupe by id).

One sender loop per *connected* session claims that session's head-of-line item (the store
hands out a session's next item only when everything before it finished: per-session order),
waits for the session's pacing (``outbox.pacing_interval`` + up to ``pacing_jitter``, to protect
the number from bans), and asks the SessionActor to send. ``outbox.attempts`` claims at most,
with exponential backoff between them, then the item is ``failed`` with its reason (a dead
letter the queue administration can retry).

A session that is banned, logged out or otherwise parked has its outbox paused in the store
(new sends are still accepted) and the pause is published with the session's reason; it
resumes when the session connects again. At start every item left ``running`` by a dead
process goes back to ``queued`` (alone; in a cluster, per session where its sender starts).

Several nodes: a send accepted on a node that does not run the session (the row is in the
shared store all the same) is announced on the bus channel :data:`WAKE_CHANNEL`; the node whose
sender loop serves the session wakes it at once. The idle poll (:data:`IDLE_POLL`) is only the
fallback for an announcement the fire-and-forget bus lost. A node whose sender loop starts for
a session (it connected here, perhaps taken over from a node that died mid-send) first puts that
session's ``running`` items back to ``queued``: the resend reuses their message ids.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.flows import (
    MESSAGE_CREATED,
    OUTBOX_PAUSED,
    OUTBOX_RESUMED,
    OUTBOX_UPDATED,
    Publisher,
    QueueAdmin,
    ResumeQueue,
    RetryJob,
    Wakeup,
    answer_admin,
    no_publisher,
    outbox_payload,
)
from actors.bus import BusUnavailable, Gap, MemoryBus
from actors.drivers import MediaKind, OutboundMedia, SendResult
from actors.sessions import SendMedia, SendText, SessionInfo, SessionStatus, StatusBoard
from actors.store import (
    Conflict,
    DeliveryStatus,
    InvalidInput,
    NewMessage,
    OutboxItem,
    Queue,
    Store,
)
from supervisor import Actor, ActorFailed, ActorStopped, AskTimeout, ChildNotFound

from ._messages import OutboxRefused, Send

_LOG = logging.getLogger("zapvisor.outbox")

SENDING = frozenset({SessionStatus.CONNECTED, SessionStatus.DEGRADED})
"""Statuses in which a session's sender loop runs."""

PAUSING = frozenset({
    SessionStatus.BANNED, SessionStatus.LOGGED_OUT, SessionStatus.NEEDS_AUTH, SessionStatus.REPLACED,
    SessionStatus.OUTDATED,
})
"""Statuses that pause a session's outbox in the store (and say so) until it connects again: the
account needs time or a human. Other non-connected statuses (connecting, backoff, stopped by
request) just leave its sends queued."""

RETRY_BASE = 2.0
"""First retry delay after a failed send (then x2 per attempt): rides out a reconnect."""

SEND_TIMEOUT = 60.0
"""Seconds one send may take through the session (queueing behind its other requests included)."""

RETRY_SLACK = 0.05
"""Re-check this soon when a retry was due but the store did not hand it out yet (clock skew)."""

IDLE_POLL = 30.0
"""A sender with nothing to do re-checks the store this often (a wake-up from another node lost)."""

WAKE_CHANNEL = "zapvisor.outbox.wake"
"""Bus channel of "session X has a new send" announcements (``{"session_id": ...}``)."""


@attrs.define(eq=False)
class OutboxDeps:
    store: Store
    board: StatusBoard
    attempts: int
    pacing_interval: float
    pacing_jitter: float
    publisher: Publisher = no_publisher
    retry_base: float = RETRY_BASE
    bus: Any = None  # the node's Bus: wakes the sender of a session another node runs


@attrs.define(eq=False)
class _Sender:
    session_id: str
    tenant_id: str
    wake: Wakeup = attrs.field(factory=Wakeup)
    active: bool = True
    next_send_at: float = 0.0
    retry_due: float | None = None  # trio time the head-of-line item's retry comes due


class OutboxService(Actor):
    """See the module docstring."""

    def __init__(self, deps: OutboxDeps) -> None:
        self.deps = deps
        self._senders: dict[str, _Sender] = {}
        self._paused_by_status: set[str] = set()

    async def on_start(self) -> None:
        store = self.deps.store
        # Alone (memory bus), every running item was this node's; in a cluster another node may be
        # sending them right now: each session's are recovered where its sender starts instead.
        recovered = await store.recover_running(Queue.OUTBOX) if not self._shared_bus else 0
        if recovered:
            _LOG.info("outbox: %d sends interrupted by the last stop queued again", recovered)
        self._paused_by_status = {s for s in await store.paused(Queue.OUTBOX) if s}
        if self.deps.bus is not None:
            await self.ctx.nursery.start(self._wakeups)
        updates = self.deps.board.subscribe()
        for info in self.deps.board.all():
            await self._on_status(info)
        self.ctx.nursery.start_soon(self._watch, updates)

    @property
    def _shared_bus(self) -> bool:
        """Whether other nodes may exist (a bus other than the memory bus)."""
        return self.deps.bus is not None and not isinstance(self.deps.bus, MemoryBus)

    async def receive(self, message: Any) -> Any:
        match message:
            case Send():
                return await self._enqueue(message)
            case QueueAdmin():
                reply = await answer_admin(self.deps.store, Queue.OUTBOX, message)
                if isinstance(message, (ResumeQueue, RetryJob)):
                    for sender in self._senders.values():
                        sender.wake.set()
                return reply
        raise TypeError(f"outbox got an unknown message {message!r}")

    async def _enqueue(self, send: Send) -> Any:
        try:
            enqueued = await self.deps.store.enqueue_outbox(
                send.tenant_id, send.session_id, send.idempotency_key, send.to, _payload(send),
                ticket_id=send.ticket_id,
            )
        except InvalidInput as exc:
            return OutboxRefused("invalid", str(exc), str(exc).split(":", 1)[0])
        if enqueued.created:
            self._publish(enqueued.item)
            sender = self._senders.get(send.session_id)
            if sender is not None:
                sender.wake.set()
            elif self.deps.bus is not None:
                await self._announce(send.session_id)
        return enqueued

    async def _announce(self, session_id: str) -> None:
        """Tell the node that runs the session (if another does) that it has a new send."""
        try:
            await self.deps.bus.publish(WAKE_CHANNEL, {"session_id": session_id})
        except BusUnavailable as exc:
            _LOG.warning("outbox: wake-up of session %s not announced (its sender polls): %s", session_id, exc)

    async def _wakeups(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wake the local sender of every session another node announces a send for."""
        async with self.deps.bus.subscribe(WAKE_CHANNEL) as subscription:
            task_status.started()
            async for item in subscription:
                if isinstance(item, Gap):  # announcements may be lost: every sender looks now
                    woken = list(self._senders.values())
                elif isinstance(item.data, dict) and (sender := self._senders.get(item.data.get("session_id"))):
                    woken = [sender]
                else:
                    continue
                for sender in woken:
                    sender.wake.set()

    # -- session status → sender loops and pauses ----------------------------------

    async def _watch(self, updates: trio.MemoryReceiveChannel) -> None:
        async for info in updates:
            await self._on_status(info)
        raise RuntimeError("the status board dropped the outbox's subscription")

    async def _on_status(self, info: SessionInfo) -> None:
        sid, store = info.session_id, self.deps.store
        if info.status in SENDING:
            if sid in self._paused_by_status:
                await store.set_paused(Queue.OUTBOX, False, session_id=sid)
                self._paused_by_status.discard(sid)
                self.deps.publisher.emit(info.tenant_id, OUTBOX_RESUMED, {"session_id": sid})
            sender = self._senders.get(sid)
            if sender is None or not sender.active:
                if self._shared_bus:  # perhaps taken over from a node that died mid-send: resend its claims
                    await store.recover_running(Queue.OUTBOX, session_id=sid)
                sender = self._senders[sid] = _Sender(sid, info.tenant_id)
                self.ctx.nursery.start_soon(self._sender_loop, sender)
            return
        sender = self._senders.pop(sid, None)
        if sender is not None:
            sender.active = False
            sender.wake.set()
        if info.status in PAUSING and sid not in self._paused_by_status:
            await store.set_paused(Queue.OUTBOX, True, session_id=sid)
            self._paused_by_status.add(sid)
            payload = {"session_id": sid, "status": str(info.status), "reason": info.reason}
            self.deps.publisher.emit(info.tenant_id, OUTBOX_PAUSED, payload)
            _LOG.info("outbox of session %s paused: %s (%s)", sid, info.status, info.reason)

    # -- one session's sends ----------------------------------------------------------

    async def _sender_loop(self, sender: _Sender) -> None:
        """Claim, pace, send, record — while the session is connected."""
        store = self.deps.store
        while sender.active:
            claimed = await store.claim_outbox(session_id=sender.session_id, limit=1)
            if not claimed:
                now, wait = trio.current_time(), IDLE_POLL
                if sender.retry_due is not None:
                    # a retry is due then; just past it, the store's clock may lag ours a little
                    wait = max(sender.retry_due - now, RETRY_SLACK)
                    if sender.retry_due <= now:
                        sender.retry_due = None
                await sender.wake.wait(wait)
                continue
            item = claimed[0]  # the session's head of line: any retry announced before was this one
            await trio.sleep_until(sender.next_send_at)
            delay = await self._attempt(item)
            sender.retry_due = None if delay is None else trio.current_time() + delay
            jitter = self.ctx.system.rng.uniform(0.0, self.deps.pacing_jitter)
            sender.next_send_at = trio.current_time() + self.deps.pacing_interval + jitter

    async def _attempt(self, item: OutboxItem) -> float | None:
        """One send of a claimed item; always ends it as sent, queued for a retry (returns the
        delay), or failed."""
        path = f"/tenants/{item.tenant_id}/sessions/{item.session_id}"
        text = str(item.payload.get("text", ""))
        media = item.payload.get("media")
        if media is None:
            request: Any = SendText(item.to_jid, text, item.message_id)
        else:
            try:
                data = await trio.to_thread.run_sync(Path(media["path"]).read_bytes)
            except OSError as exc:
                return await self._failed(item, f"attachment unreadable: {exc}")
            attachment = OutboundMedia(data, MediaKind(media["kind"]), media["mimetype"], media.get("file_name"), text)
            request = SendMedia(item.to_jid, attachment, item.message_id)
        try:
            reply = await self.ctx.system.ref(path).ask(request, SEND_TIMEOUT)
        except (ChildNotFound, ActorStopped, AskTimeout, ActorFailed) as exc:
            reply = exc
        if isinstance(reply, SendResult):
            await self._sent(item, text, reply, media["kind"] if media else None)
            return None
        return await self._failed(item, f"{type(reply).__name__}: {getattr(reply, 'message', reply)}")

    async def _sent(self, item: OutboxItem, text: str, result: SendResult, media_type: str | None) -> None:
        store = self.deps.store
        contact = await store.upsert_contact(item.tenant_id, item.to_jid)
        stored = await store.insert_message(NewMessage(
            tenant_id=item.tenant_id, session_id=item.session_id, wa_id=item.message_id, contact_id=contact.id,
            ticket_id=item.ticket_id, from_me=True, body=text, sent_at=result.timestamp, status=DeliveryStatus.SENT,
            media_type=media_type,
        ))
        try:
            done = await store.outbox_sent(item.id)
        except Conflict:
            return  # an administrator removed or reset it meanwhile; WhatsApp has the message
        self._publish(done)
        if item.ticket_id is not None:
            payload = {"id": stored.message_id, "wa_id": item.message_id, "ticket_id": item.ticket_id,
                       "from_me": True, "body": text, "status": str(DeliveryStatus.SENT), "sent_at": result.timestamp}
            self.deps.publisher.emit(item.tenant_id, MESSAGE_CREATED, payload, ticket_id=item.ticket_id)

    async def _failed(self, item: OutboxItem, error: str) -> float | None:
        delay = retry_at = None
        if item.attempts < self.deps.attempts:
            delay = self.deps.retry_base * 2 ** (item.attempts - 1)
            retry_at = self.ctx.system.wall_time(trio.current_time() + delay)
        try:
            updated = await self.deps.store.job_failed(Queue.OUTBOX, item.id, error, retry_at=retry_at)
        except Conflict:
            return None
        _LOG.info("outbox item %s attempt %d failed: %s", item.id, item.attempts, error)
        self._publish(updated)
        return delay

    def _publish(self, item: OutboxItem) -> None:
        self.deps.publisher.emit(item.tenant_id, OUTBOX_UPDATED, outbox_payload(item), ticket_id=item.ticket_id)


def _payload(send: Send) -> dict:
    """What the outbox row keeps: the text (a caption with media) and where the attachment is."""
    payload: dict = {"text": send.text}
    if send.media is not None:
        payload["media"] = attrs.asdict(send.media)
    return payload
