"""The :class:`OutboxService` (``/services/outbox``): durable, ordered, paced sends.

A send request becomes an outbox row first (:class:`Send`, idempotent by its key: a repeated
request never makes a second row). One sender loop per *connected* session claims that
session's head-of-line item (the store hands out a session's next item only when everything
before it finished: per-session order), waits for the session's pacing
(``outbox.pacing_interval`` + up to ``pacing_jitter``, to protect the number from bans), and
asks the SessionActor to send.

**The guarantee: at most once, and never silently.** WhatsApp, not zapvisor, names a sent
message (neonize's SendMessage takes no id), so a send repeated after a lost answer would be a
second message: nothing can dedupe it. The outbox therefore commits a row as ``sending``
*before* the driver gets it, and afterwards:

* WhatsApp answered → ``done``, with the id WhatsApp gave it (``wa_id``), and the outbound
  message stored under that id in the same transaction; receipts (delivered, read, played)
  and customers' quotes refer to it.
* WhatsApp certainly does not have it (no connection to send on, the session is not running,
  WhatsApp refused) → retried: ``outbox.attempts`` claims at most, exponential backoff between
  them, then ``dead`` (delivery ``failed``), a dead letter the queue administration can retry.
* Nobody can tell (no answer within the send timeout, the connection or the neonize worker
  died after the send went out, the session failed meanwhile, or the process died while the row
  was ``sending`` — found so at the next start) → ``unknown``: never sent again by itself,
  announced as ``message.send_unknown`` (websocket and webhooks) and listed by
  ``GET /queues/outbox/jobs?state=unknown``. An operator who checked the chat retries it
  deliberately (``POST /queues/outbox/jobs/{id}/retry``: it may then arrive twice) or removes it.
  An ``unknown`` row does not hold its session's line.

A session that is banned, logged out or otherwise parked has its outbox paused in the store
(new sends are still accepted) and the pause is published with the session's reason; it
resumes when the session connects again. At start every item left ``running`` (claimed, never
handed over) goes back to ``queued``, and every item left ``sending`` becomes ``unknown``; so
does a session's ``sending`` item this service did not hand over itself when it starts sending
for that session (a session taken over from another node that died mid-send).

Item isolation (DESIGN §10): an item that fails on its own content — its message cannot be
recorded, its payload is malformed — is *quarantined*: dead at once, ``last_error`` starting with
``quarantined:``, and the session's next item goes on; the service never crashes for it. Only a
store that is unreachable fails the service (that is not the item's fault). Should anything
still kill the service mid-item, the store counts the item's interruptions and quarantines it
at its third (see :class:`~actors.store.JobStatus`), so a restart never meets it again and again.

Several nodes: a send accepted on a node that does not run the session (the row is in the
shared store all the same) is announced on the bus channel :data:`WAKE_CHANNEL`; the node whose
sender loop serves the session wakes it at once. The idle poll (:data:`IDLE_POLL`) is only the
fallback for an announcement the fire-and-forget bus lost. In a cluster, ``running`` items are
recovered per session where its sender starts (never all at boot: another node may be claiming
them right now); a ``running`` item never reached the driver, so putting it back is safe.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.flows import (
    MESSAGE_CREATED,
    MESSAGE_SEND_UNKNOWN,
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
from actors.drivers import MediaKind, OutboundMedia, Quote, SendResult
from actors.sessions import (
    RequestFailed,
    SendMedia,
    SendText,
    SessionInfo,
    SessionStatus,
    StatusBoard,
    UpstreamGate,
    store_gate,
)
from actors.store import (
    QUARANTINED,
    Conflict,
    InvalidInput,
    OutboxItem,
    Queue,
    Store,
    StoreClosed,
    StoreUnavailable,
    WriteFailed,
    storable_text,
)
from supervisor import Actor, ActorFailed, ActorStopped, AskTimeout, ChildNotFound

from ._messages import OutboxRefused, Send, SessionDeleted

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
"""Seconds one send may take through the session (queueing behind its other requests included);
past it the send's outcome is unknown."""

NOT_SENT = frozenset({"NotConnectedError", "RequestError", "MediaNotFoundError", "DriverStateError"})
"""Driver errors (:class:`RequestFailed` kinds) after which WhatsApp certainly does not have the
message: there was no connection to send on, or WhatsApp answered no. Any other failure of a
send already handed to the session — a timeout (``RequestTimeoutError``), a connection or worker
that died after it went out (``RequestInterruptedError``, ``WorkerDied``), anything unexpected —
leaves its outcome unknown."""

BOOT_UNKNOWN = "zapvisor stopped while this send was with WhatsApp's driver: WhatsApp may have it"
"""Why a row found ``sending`` at start is ``unknown``."""

TAKEN_OVER = "the session's previous owner was sending this when it lost the session: WhatsApp may have it"
"""Why a row found ``sending`` when this node starts sending for a session is ``unknown`` (its
sender was another node, or an earlier life of this service)."""

RETRY_SLACK = 0.05
"""Re-check this soon when a retry was due but the store did not hand it out yet (clock skew)."""

IDLE_POLL = 30.0
"""How often the node looks for sends its idle senders were not woken for (a wake-up from another
node lost, a retry another node scheduled): one read for all of them (:meth:`OutboxService._poll`)."""

WAKE_CHANNEL = "zapvisor.outbox.wake"
"""Bus channel of "session X has a new send" announcements (``{"session_id": ...}``)."""

MAX_ERROR_CHARS = 2000
"""A quarantined item's recorded error is cut to this: enough for any exception's message, bounded
whatever the item carried (an error message may quote it)."""


@attrs.define(eq=False)
class OutboxDeps:
    store: Store
    board: StatusBoard
    attempts: int
    pacing_interval: float
    pacing_jitter: float
    publisher: Publisher = no_publisher
    retry_base: float = RETRY_BASE
    send_timeout: float = SEND_TIMEOUT
    idle_poll: float = IDLE_POLL
    store_gate: UpstreamGate = attrs.field(factory=store_gate)  # the node's: claims wait there during an outage
    bus: Any = None  # the node's Bus: wakes the sender of a session another node runs


@attrs.define(eq=False)
class _LatestStatuses:
    """Each session's newest status the outbox has not applied yet.

    Applying statuses may write to the store (sends left ``sending`` by another node, pauses), so
    it can run behind the status board when a node connects hundreds of sessions at once (1,000
    sessions over three nodes: ~1,300 changes in seconds), and the board drops a subscriber that
    falls ``SUBSCRIBER_BUFFER`` behind: the outbox service then failed and restarted, and sends
    were refused meanwhile. The outbox needs where each session is, not how it got there: a newer
    change replaces an older one not yet applied, and the applier takes every waiting one at once
    (:meth:`OutboxService._apply`: one store write for all the sessions that start sending).
    """

    _pending: dict[str, SessionInfo] = attrs.field(factory=dict)
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def put(self, info: SessionInfo) -> None:
        self._pending[info.session_id] = info
        self._changed.set()

    async def take_all(self) -> list[SessionInfo]:
        """Every waiting session's newest status (each session once); waits for one."""
        while not self._pending:
            self._changed = trio.Event()
            await self._changed.wait()
        taken, self._pending = list(self._pending.values()), {}
        return taken


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
        self._in_flight: set[int] = set()  # outbox rows this service has handed to a session
        self._look = Wakeup()  # look for work of idle senders now (_poll)

    async def on_start(self) -> None:
        # A store that is stopped or unreachable: the start waits at the gate (as claims do) rather
        # than fail, which would spend its supervisors' restart intensity on the store's outage.
        # What is retried there is safe to run again (recovery, marks and pauses are idempotent).
        gate = self.deps.store_gate
        await gate.call(self._recover)
        if self.deps.bus is not None:
            await self.ctx.nursery.start(self._wakeups)
        statuses = _LatestStatuses()
        self.ctx.nursery.start_soon(self._watch, self.deps.board.subscribe(), statuses)  # drains from now on
        await self._apply(list(self.deps.board.all()))
        self.ctx.nursery.start_soon(self._apply_statuses, statuses)
        self.ctx.nursery.start_soon(self._poll)

    async def _recover(self) -> None:
        """What the last stop left: interrupted sends queued again, unknown outcomes announced, pauses."""
        store = self.deps.store
        # Alone (memory bus), every running item was this node's; in a cluster another node may be
        # sending them right now: each session's are recovered where its sender starts instead.
        recovered = await store.recover_running(Queue.OUTBOX) if not self._shared_bus else 0
        if recovered:
            _LOG.info("outbox: %d sends interrupted by the last stop taken back (queued again, or "
                      "quarantined at their third interruption)", recovered)
        if not self._shared_bus:  # in a cluster, per session where its sender starts (TAKEN_OVER below)
            for item in await store.outbox_unknown(BOOT_UNKNOWN):
                self._announce_unknown(item)
        self._paused_by_status = {s for s in await store.paused(Queue.OUTBOX) if s}

    @property
    def _shared_bus(self) -> bool:
        """Whether other nodes may exist (a bus other than the memory bus)."""
        return self.deps.bus is not None and not isinstance(self.deps.bus, MemoryBus)

    async def receive(self, message: Any) -> Any:
        match message:
            case Send():
                return await self._enqueue(message)
            case SessionDeleted(session_id):  # it never sends again: nothing to resume
                self._paused_by_status.discard(session_id)
                return None
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
        except WriteFailed as exc:  # the database refused this row: the request's fault, not the service's
            return OutboxRefused("invalid", str(exc))
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
                if isinstance(item, Gap):  # announcements may be lost: look for work now
                    self._look.set()
                    continue
                if isinstance(item.data, dict) and (sender := self._senders.get(item.data.get("session_id"))):
                    sender.wake.set()

    async def _poll(self) -> None:
        """Every ``idle_poll`` (:data:`IDLE_POLL`; at once after a gap in the wake-ups), wake the senders whose
        session has a send due, found by one read for all of them. A sender with nothing to do
        never claims by itself: a claim is a write, and the idle claims of a node's hundreds of
        senders, started together, came in bursts that the sends and inbound messages waited behind."""
        while True:
            await self._look.wait(self.deps.idle_poll)
            idle = [sid for sid, sender in self._senders.items() if sender.active]
            if not idle:
                continue
            for sid in await self.deps.store_gate.call(self.deps.store.outbox_due, idle):
                if (sender := self._senders.get(sid)) is not None:
                    sender.wake.set()

    # -- session status → sender loops and pauses ----------------------------------

    async def _watch(self, updates: trio.MemoryReceiveChannel, statuses: _LatestStatuses) -> None:
        """Keep up with the board (a subscriber that falls behind is dropped): only note each change,
        and take everything queued at each wake-up (each ``receive`` is a checkpoint)."""
        try:
            while True:
                statuses.put(await updates.receive())
                with contextlib.suppress(trio.WouldBlock):
                    while True:
                        statuses.put(updates.receive_nowait())
        except trio.EndOfChannel:
            raise RuntimeError("the status board dropped the outbox's subscription") from None

    async def _apply_statuses(self, statuses: _LatestStatuses) -> None:
        """Apply the sessions' newest statuses, all those waiting at a time."""
        while True:
            await self._apply(await statuses.take_all())

    async def _apply(self, infos: list[SessionInfo]) -> None:
        """Start the senders of sessions that send now (:meth:`_take_over`, one store write for
        all of them), stop the others', and pause or resume the outboxes of those whose status
        says so (each its own write: a ban or a logout is rare). Store writes wait at the store
        gate during an outage, as claims do."""
        starting: list[_Sender] = []
        async with trio.open_nursery() as nursery:  # the pauses' writes share group commits
            for info in infos:
                sid = info.session_id
                if info.status in SENDING:
                    if sid in self._paused_by_status:
                        nursery.start_soon(self._pause, info, False)
                    sender = self._senders.get(sid)
                    if sender is None or not sender.active:
                        starting.append(sender := _Sender(sid, info.tenant_id))
                        self._senders[sid] = sender
                    continue
                sender = self._senders.pop(sid, None)
                if sender is not None:
                    sender.active = False
                    sender.wake.set()
                if info.status in PAUSING and sid not in self._paused_by_status:
                    nursery.start_soon(self._pause, info, True)
        if starting:
            await self._take_over(starting)

    async def _pause(self, info: SessionInfo, paused: bool) -> None:
        """Pause (or resume) a session's outbox because of its status, and say so."""
        sid = info.session_id
        await self.deps.store_gate.call(functools.partial(self.deps.store.set_paused, Queue.OUTBOX, paused,
                                                          session_id=sid))
        if not paused:
            self._paused_by_status.discard(sid)
            self.deps.publisher.emit(info.tenant_id, OUTBOX_RESUMED, {"session_id": sid})
            return
        if self.deps.board.get(sid) is not None:  # else deleted meanwhile (SessionDeleted): nothing to resume
            self._paused_by_status.add(sid)
        payload = {"session_id": sid, "status": str(info.status), "reason": info.reason}
        self.deps.publisher.emit(info.tenant_id, OUTBOX_PAUSED, payload)
        _LOG.info("outbox of session %s paused: %s (%s)", sid, info.status, info.reason)

    async def _take_over(self, senders: list[_Sender]) -> None:
        """Start ``senders``' loops once what their sessions' previous sender left is settled,
        in one store write for all of them: a send left ``sending`` by whoever sent for a session
        before (another node, or this service before a restart) would hold its line for ever, so
        its outcome is unknown; in a cluster, claims of a node that died are queued again. Those
        with a queued send claim it at once; the others wait for a wake-up (or the idle poll).
        The senders are registered before the write, so a send accepted meanwhile wakes them.

        One write each (and a claim each) made a node taking over hundreds of sessions a flood
        of store writes that every send then waited behind."""
        take_over = functools.partial(self.deps.store.take_over_outbox, [s.session_id for s in senders],
                                      TAKEN_OVER, keep=tuple(self._in_flight), recover=self._shared_bus)
        taken = await self.deps.store_gate.call(take_over)
        for item in taken.unknown:
            self._announce_unknown(item)
        for sender in senders:
            if sender.session_id in taken.waiting:
                sender.wake.set()
            self.ctx.nursery.start_soon(self._sender_loop, sender)

    # -- one session's sends ----------------------------------------------------------

    async def _sender_loop(self, sender: _Sender) -> None:
        """Claim, pace, send, record — while the session is connected (from its first wake-up:
        see :meth:`_take_over`)."""
        store = self.deps.store
        await sender.wake.wait(math.inf)
        while sender.active:
            # pace before claiming, so an item is `running` only while it is really being sent
            await trio.sleep_until(sender.next_send_at)
            claim = functools.partial(store.claim_outbox, session_id=sender.session_id, limit=1)
            claimed = await self.deps.store_gate.call(claim)  # a store outage: wait at the gate, not crash
            if not claimed:
                now, wait = trio.current_time(), math.inf  # until woken (a send, _poll)
                if sender.retry_due is not None:
                    # a retry is due then; just past it, the store's clock may lag ours a little
                    wait = max(sender.retry_due - now, RETRY_SLACK)
                    if sender.retry_due <= now:
                        sender.retry_due = None
                await sender.wake.wait(wait)
                continue
            item = claimed[0]  # the session's head of line: any retry announced before was this one
            delay = await self._isolated_attempt(item)
            sender.retry_due = None if delay is None else trio.current_time() + delay
            jitter = self.ctx.system.rng.uniform(0.0, self.deps.pacing_jitter)
            sender.next_send_at = trio.current_time() + self.deps.pacing_interval + jitter

    async def _isolated_attempt(self, item: OutboxItem) -> float | None:
        """:meth:`_attempt` inside the item boundary: whatever the item's content makes fail
        quarantines the item (see the module docstring) instead of crashing the service.

        Raises:
            StoreUnavailable, StoreClosed: the store is down, which is no fault of the item.
        """
        try:
            return await self._attempt(item)
        except (StoreUnavailable, StoreClosed):
            raise
        except Exception as exc:  # the item boundary: see the module docstring
            await self._quarantine(item, exc)
            return None

    async def _quarantine(self, item: OutboxItem, exc: Exception) -> None:
        error = storable_text(f"{QUARANTINED}: {type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]
        _LOG.error("outbox item %s (session %s, message id %s) quarantined: %s", item.id, item.session_id,
                   item.message_id, error)
        try:
            updated = await self.deps.store.job_failed(Queue.OUTBOX, item.id, error, retry_at=None)
        except Conflict:
            return  # it was finished, or an administrator removed or reset it meanwhile
        self._publish(updated)

    async def _attempt(self, item: OutboxItem) -> float | None:
        """One send of a claimed item; always ends it as sent, queued for a retry (returns the
        delay), failed, or unknown (see the module docstring)."""
        path = f"/tenants/{item.tenant_id}/sessions/{item.session_id}"
        text = str(item.payload.get("text", ""))
        media = item.payload.get("media")
        if media is None:
            quote = item.payload.get("quote")
            request: Any = SendText(item.to_jid, text, item.message_id, None if quote is None else Quote(**quote))
        else:
            try:
                data = await trio.to_thread.run_sync(Path(media["path"]).read_bytes)
            except OSError as exc:
                return await self._failed(item, f"attachment unreadable: {exc}")
            attachment = OutboundMedia(data, MediaKind(media["kind"]), media["mimetype"], media.get("file_name"), text)
            request = SendMedia(item.to_jid, attachment, item.message_id)
        # From here WhatsApp may get the message. A stop (SIGTERM, a restart of this service) waits
        # for the answer and records it — at most the send timeout plus the store's writes — so a
        # graceful stop never leaves a send unknown; only a crash or kill -9 can.
        with trio.CancelScope(shield=True):
            self._in_flight.add(item.id)
            try:
                return await self._hand_over(item, path, request, media["kind"] if media else None)
            finally:
                self._in_flight.discard(item.id)

    async def _hand_over(self, item: OutboxItem, path: str, request: Any, media_type: str | None) -> float | None:
        """Mark the item ``sending``, ask the session to send it, record the outcome."""
        try:
            await self.deps.store.outbox_sending(item.id)
        except Conflict:
            return None  # an administrator removed it meanwhile (or a restarting node requeued it)
        try:
            reply = await self.ctx.system.ref(path).ask(request, self.deps.send_timeout)
        except ChildNotFound as exc:  # no session to hand it to: nothing was sent
            return await self._failed(item, f"{type(exc).__name__}: {exc}")
        except (ActorStopped, AskTimeout, ActorFailed) as exc:  # the session may have sent it
            await self._unknown(item, f"{type(exc).__name__}: {exc}")
            return None
        match reply:
            case SendResult():
                await self._sent(item, reply, media_type)
                return None
            case RequestFailed(kind, message) if kind in NOT_SENT:
                return await self._failed(item, f"{kind}: {message}")
            case RequestFailed(kind, message):
                await self._unknown(item, f"{kind}: {message}")
                return None
        await self._unknown(item, f"unexpected reply {reply!r}")
        return None

    async def _sent(self, item: OutboxItem, result: SendResult, media_type: str | None) -> None:
        """Record WhatsApp's id for the row and store the outbound message (one transaction)."""
        try:
            record = await self.deps.store.outbox_sent(
                item.id, result.message_id, sent_at=result.timestamp, media_type=media_type
            )
        except Conflict:
            return  # an administrator removed it meanwhile; WhatsApp has the message
        self._publish(record.item)
        if item.ticket_id is not None:
            payload = {"id": record.message_id, "wa_id": result.message_id, "ticket_id": item.ticket_id,
                       "from_me": True, "body": storable_text(str(item.payload.get("text", ""))),
                       "status": str(record.status),
                       "sent_at": result.timestamp}
            self.deps.publisher.emit(item.tenant_id, MESSAGE_CREATED, payload, ticket_id=item.ticket_id)

    async def _unknown(self, item: OutboxItem, error: str) -> None:
        """The send went to the session and nobody knows whether WhatsApp has it: say so, never
        send it again by ourselves."""
        for updated in await self.deps.store.outbox_unknown(f"send outcome unknown: {error}", item_id=item.id):
            self._announce_unknown(updated)

    def _announce_unknown(self, item: OutboxItem) -> None:
        _LOG.warning("outbox item %s (session %s): %s; not sent again unless an administrator retries it",
                     item.id, item.session_id, item.last_error)
        self._publish(item)
        self.deps.publisher.emit(item.tenant_id, MESSAGE_SEND_UNKNOWN, outbox_payload(item), ticket_id=item.ticket_id)

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
    """What the outbox row keeps: the text (a caption with media), where the attachment is, and
    the message a text replies to."""
    payload: dict = {"text": send.text}
    if send.media is not None:
        payload["media"] = attrs.asdict(send.media)
    if send.quote is not None:
        payload["quote"] = attrs.asdict(send.quote)
    return payload
