"""The :class:`SessionActor`: one WhatsApp account, kept connected, or visibly not.

One incarnation of the actor is one attempt to own and use the account:

1. take the account's ownership lease from the bus (``starting``): only the
   holder may connect, so two nodes never fight over one account;
2. then wait for a slot in the node's :class:`~actors.sessions.SessionPool`
   (``queued``): a session waiting for another node to hand it over holds no slot;
3. connect through the shared upstream gate and connect limiter
   (``connecting``): while WhatsApp is unreachable one trial connect probes for
   the whole node, and when it is back the reconnects come as a ramp, never a
   stampede;
4. serve the connection: QR codes and pairing (``qr``/``pairing``), traffic
   (``connected``), evidence-based health (``degraded``);
5. when the connection ends, the policy (``_policy``) decides: reconnect in
   place (515), or exit with a reason the supervisor acts on — retry with
   backoff and breaker, retry after a ban, or stop for good.

A stop of the actor leaves the last status as it was: a node shutting down
must not record its sessions as "stopped", or they would not be restored at
the next boot. Only a deliberate stop (the session manager) records ``stopped``.

Inbound messages are acknowledged to the driver only after the
:class:`InboundSink` has stored them; the ack releases them from the driver's
inbound journal (:mod:`actors.drivers._journal`), so a crash anywhere replays
them instead of losing them (WhatsApp itself never re-delivers: whatsmeow
receipts on arrival). They are stored and acknowledged in batches, a few batches at once
(``_batches``): each chat's messages in arrival order, different chats
concurrently, so a busy session pays its per-delivery costs once per batch.

A store or bus outage is not the session's failure (``_dependencies``): while
the store is unreachable its writes wait at the node's store gate, holding the
unacknowledged messages; while the bus is unreachable the session, which can no
longer renew its lease, stops using the account and waits at the bus gate.
Requests (send, mark read, pair...) are messages to this actor;
driver errors come back as :class:`RequestFailed` values, never as crashes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Callable, Protocol

import attrs
import trio

from actors.bus import Bus, BusError, Lease, LeasePhase
from actors.drivers import (
    ENDING_EVENTS,
    CallOffer,
    Connected,
    Disconnected,
    DriverConnectError,
    DriverError,
    DriverFactory,
    HistoryChunk,
    KeepaliveLost,
    KeepaliveRestored,
    LidMapped,
    MediaRef,
    Message,
    MessageKind,
    NotConnectedError,
    OfflineSyncDone,
    OutboundMedia,
    OutboundOperation,
    PairingCode,
    PairSuccess,
    Presence,
    Qr,
    Quote,
    Receipt,
    RequestError,
    Undecryptable,
)
from supervisor import Actor, RestartLimiter, StopForGood, unwrap

from ._batches import InboundBatches
from ._cache import CacheLimits, SessionCaches
from ._dependencies import bus_gate, store_gate
from ._errors import ConnectionDead, OwnershipLost, SessionDisconnected, StuckConnecting
from ._options import SessionOptions
from ._policy import Outcome, SessionPolicy, outcome_for, reaction_for
from ._pool import SessionPool
from ._status import SessionStatus, StatusBoard
from ._upstream import UpstreamGate, UpstreamMode

_LOG = logging.getLogger("zapvisor.sessions")

INBOUND_HELD = 256
"""Inbound messages a session holds (queued or being stored) before it stops reading its driver
(then the driver's channel, 256 more, and WhatsApp wait): a busy session's worth of batches in
flight without hoarding (the simulator's delivery window matches it)."""

INBOUND_BATCHES = 4
"""Inbound batches a session stores at once: enough that a message arriving while one batch is
being stored starts at once (at a low rate every message is its own batch), few enough that
under load they grow large and share commits."""

IMMEDIATE_RESTARTS = 3
"""Fresh drivers tried in a row after driver-host failures before the supervisor's backoff applies."""
LOGOUT_ANSWER_WAIT = 5.0
"""Seconds a session stopped by its own logout waits for that request to answer before it exits
(the driver's logout finishes wiping the credentials after the connection ended)."""


# -- messages ------------------------------------------------------------------


@attrs.frozen
class GetStatus:
    """Reply: the session's :class:`~actors.sessions.SessionInfo`."""


@attrs.frozen
class GetCacheSizes:
    """Reply: entries in each bounded cache ({"chats", "contacts", "messages"})."""


@attrs.frozen
class PairPhone:
    """Reply: the pairing code (str) or RequestFailed. Valid while QR codes show."""

    phone: str


@attrs.frozen
class SendText:
    """Reply: the driver's SendResult (WhatsApp's id for the message) or RequestFailed.
    ``message_id`` is the outbox row's own id, the driver's request key, never WhatsApp's."""

    to: str
    text: str
    message_id: str
    quote: Quote | None = None  # the message this one replies to


@attrs.frozen
class SendMedia:
    to: str
    media: OutboundMedia
    message_id: str


@attrs.frozen
class SendOperation:
    """React to, edit or delete for everyone a message of ``chat_jid``. Reply: the driver's
    SendResult or RequestFailed. Not through the outbox: each is idempotent on WhatsApp's side
    (a repeat changes nothing), so a lost answer is simply asked again."""

    chat_jid: str
    operation: OutboundOperation
    request_key: str


@attrs.frozen
class MarkRead:
    chat_jid: str
    message_ids: tuple[str, ...]
    sender_jid: str | None = None


@attrs.frozen
class DownloadMedia:
    """Reply: the bytes, or RequestFailed."""

    ref: MediaRef


@attrs.frozen
class Probe:
    """Reply: round-trip seconds (float), or RequestFailed."""


@attrs.frozen
class Logout:
    """Unlink the device; the connection ends with LoggedOut and the session stops for good."""


@attrs.frozen
class HandOver:
    """Stop using the account because another node takes the session over (a drain, a
    rebalance): close the connection, store and acknowledge every message it delivered, release
    the ownership lease, then idle until stopped. Reply: None once that is done (the new owner
    may connect from then on).

    Without it, messages receipted and journaled here but not yet stored would stay in this
    node's journal, replayed only if the session ever ran here again: lost to the new owner.
    """


@attrs.frozen
class RequestFailed:
    """A request the driver could not carry out (not connected, WhatsApp said no...)."""

    error_type: str
    message: str


# -- what a session needs from the rest of the node ----------------------------


class InboundSink(Protocol):
    """Where inbound traffic goes. ``deliver`` returns only once every message is durable;
    it keeps the order of each chat's messages."""

    async def deliver(self, session_id: str, tenant_id: str, messages: Sequence[Message]) -> None: ...

    async def receipt(self, session_id: str, tenant_id: str, receipt: Receipt) -> None: ...

    async def learn(self, session_id: str, tenant_id: str, mapping: LidMapped) -> None: ...

    async def call(self, session_id: str, tenant_id: str, offer: CallOffer) -> SessionOptions: ...

    async def options(self, session_id: str) -> SessionOptions: ...

    async def presence_targets(self, session_id: str) -> list[str]: ...

    async def history(self, session_id: str, tenant_id: str, chunk: HistoryChunk) -> None: ...


@attrs.define(eq=False)
class SessionDeps:
    """Everything the sessions of one node share (built once by the daemon)."""

    driver_factory: DriverFactory
    board: StatusBoard
    pool: SessionPool
    bus: Bus
    limiter: RestartLimiter  # gates connect attempts: rate and concurrency
    inbound: InboundSink
    upstream: UpstreamGate = attrs.field(factory=UpstreamGate)  # is WhatsApp reachable at all?
    store_gate: UpstreamGate = attrs.field(factory=store_gate)  # is the store? (inbound and receipts wait here)
    bus_gate: UpstreamGate = attrs.field(factory=bus_gate)  # is the bus? (the ownership lease waits here)
    node_id: str = "node-1"
    policy: SessionPolicy = attrs.field(factory=SessionPolicy)
    cache_limits: CacheLimits = attrs.field(factory=CacheLimits)
    presence: Callable[[str, str, Presence], None] | None = None


PRESENCE_OP_TIMEOUT = 10.0
"""Seconds a presence operation (online, typing, subscribe) may take before it is given up."""

MAX_SUBSCRIBED = 1000
"""Contacts one connection subscribes to at most: the active conversations of a busy desk."""


def lease_resource(session_id: str) -> str:
    """The bus lock a session's owner holds: whoever holds it runs the session (and is alive)."""
    return f"session:{session_id}"


def _chat(message: Message) -> str:
    return message.chat_jid


class SessionActor(Actor):
    """Keeps one WhatsApp session alive (see the module docstring)."""

    def __init__(self, session_id: str, tenant_id: str, deps: SessionDeps) -> None:
        self.session_id = session_id
        self.tenant_id = tenant_id
        self.deps = deps
        self.policy = deps.policy
        self.caches = SessionCaches(deps.cache_limits)
        self.driver = None
        self._connected = False
        self._pairing = False
        self._verdict: Outcome | None = None
        self._last_evidence = 0.0
        self._keepalive_lost_at: float | None = None
        self._wake = trio.Event()
        self._connection_nursery: trio.Nursery | None = None
        self._subscribed: set[str] = set()  # contacts whose presence this connection asked for
        self._handing_over = False
        self._handed_over = trio.Event()
        self._lease_scope = trio.CancelScope()  # cancelled by a hand-over: the lease is released then
        self._lease_started = trio.Event()  # its first attempt is over (cancelling it earlier fails the start)
        self._lease_released = trio.Event()
        self._serving = False  # a connection is open and its events are being handled
        self._logout_done: trio.Event | None = None  # set once an operator's Logout has its answer

    # -- lifecycle -------------------------------------------------------------

    async def on_start(self) -> None:
        self.driver = self.deps.driver_factory(self.session_id)
        self.deps.board.register(self.ctx.path, self.session_id, self.tenant_id)
        self.ctx.nursery.start_soon(self._live)

    async def receive(self, message: Any) -> Any:
        match message:
            case GetStatus():
                return self.deps.board.get(self.session_id)
            case GetCacheSizes():
                return self.caches.sizes()
            case SendText(to, text, message_id, quote):
                return await self._request(self._send_text, to, text, message_id, quote)
            case SendMedia(to, media, message_id):
                return await self._request(self.driver.send_media, to, media, message_id)
            case SendOperation(chat_jid, operation, request_key):
                return await self._request(self.driver.send_operation, chat_jid, operation, request_key)
            case MarkRead(chat_jid, message_ids, sender_jid):
                return await self._request(self.driver.mark_read, chat_jid, tuple(message_ids), sender_jid)
            case DownloadMedia(ref):
                return await self._request(self.driver.download_media, ref)
            case Probe():
                return await self._request(self.driver.probe, self.policy.probe_timeout)
            case PairPhone(phone):
                return await self._request(self.driver.pair_phone, phone)
            case Logout():
                done = self._logout_done = trio.Event()
                try:
                    return await self._request(self.driver.logout)
                finally:
                    done.set()
            case HandOver():
                return await self._hand_over()
        raise TypeError(f"session {self.session_id} got an unknown message {message!r}")

    async def _hand_over(self) -> None:
        """See :class:`HandOver`. No connection open: nothing to store, and none opens now.
        The lease goes last, once what the connection delivered is stored: the new owner may
        take the account from that moment, without waiting for this actor to be stopped."""
        self._handing_over = True
        if self._serving:
            await self.driver.stop()  # Disconnected(local) follows the messages already delivered
            await self._handed_over.wait()
        await self._lease_started.wait()
        self._lease_scope.cancel()
        await self._lease_released.wait()

    async def _run_lease(self, lease: Lease, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The lease's task, until the actor stops or a hand-over cancels it (it releases the lock as it ends)."""
        try:
            with self._lease_scope:
                await lease.run(task_status=task_status)
        finally:
            self._lease_released.set()

    async def _request(self, method, *args) -> Any:
        try:
            return await method(*args)
        except DriverError as exc:
            return RequestFailed(type(exc).__name__, str(exc))

    # -- one incarnation: pool slot → lease → connections ----------------------

    async def _live(self) -> None:
        self._status(SessionStatus.STARTING, "waiting for the ownership lease")
        lease = Lease(self.deps.bus, lease_resource(self.session_id), self.deps.node_id, self.policy.lease_ttl,
                      retry_interval=self.policy.lease_retry)
        await self.ctx.nursery.start(self._run_lease, lease)
        self._lease_started.set()
        while True:
            try:
                tenure = await self._hold_lease(lease)  # no pool slot held while another node still owns it
            except BusError:
                if self._handing_over:  # handed over while waiting: the lease was stopped on purpose
                    await trio.sleep_forever()
                raise
            with tenure.cancel_scope:
                self._status(SessionStatus.QUEUED, "waiting for a pool slot")
                async with self.deps.pool.slot(self.session_id):
                    await self._drive()
            if self._handing_over:  # the hand-over released the lease: no status, stopped in a moment
                await trio.sleep_forever()
            if tenure.cancel_scope.cancel_called:  # its deadline may fire before the lease task ends it:
                await tenure.lost.wait()  # wait for that (Lease._hold), so the next turn gets a new tenure
            if lease.state.phase not in (LeasePhase.UNAVAILABLE, LeasePhase.HELD):
                break  # another node holds it, or the lease stopped: that is a failure
            # The bus went away (or came back at once), not the account: we stopped using it, as the
            # lease requires, and wait for it again without failing.
            self._status(SessionStatus.DISCONNECTED, f"bus unavailable: {tenure.reason}")
            self.driver = self.deps.driver_factory(self.session_id)  # the cancelled one is spent
        self._status(SessionStatus.DISCONNECTED, f"ownership lost: {tenure.reason}")
        raise OwnershipLost(tenure.reason or "ownership lease lost")

    async def _hold_lease(self, lease: Lease):
        """The next tenure of ``lease``. While the bus is unreachable the session waits at the
        node's bus gate (one trial read probes for all sessions), then has its lease retry at once."""
        resource = lease_resource(self.session_id)
        while lease.tenure is None and lease.state.phase is LeasePhase.UNAVAILABLE:
            self._status(SessionStatus.BACKOFF, f"bus unavailable: {lease.state.reason}; waiting at the bus gate")
            await self.deps.bus_gate.call(self.deps.bus.lock_owner, resource)
            lease.retry_now()
            with trio.move_on_after(self.policy.lease_ttl):
                return await lease.wait_held()
        return await lease.wait_held()

    async def _drive(self) -> None:
        """Host the driver and its connections; a dead driver host is replaced at once.

        A driver whose error says ``restart_immediately`` (a neonize worker
        process died) tells us nothing about WhatsApp: a fresh driver reconnects
        now, without backoff or a breaker count — up to IMMEDIATE_RESTARTS in a
        row, after which the error goes to the supervisor like any failure.
        """
        immediate = 0
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.driver.run)
                    await self._connections()
            except Exception as exc:
                cause = unwrap(exc)
                host_failed = isinstance(cause, DriverError) and cause.restart_immediately
                if not host_failed or immediate >= IMMEDIATE_RESTARTS:
                    raise
                immediate += 1
                _LOG.warning("session %s: %s; reconnecting on a fresh driver", self.session_id, cause)
                self._status(SessionStatus.DISCONNECTED, str(cause))
                self.driver = self.deps.driver_factory(self.session_id)

    async def _connections(self) -> None:
        """Connect, serve, and apply the policy to each ending; returns only by raising."""
        while True:
            if self._handing_over:
                await trio.sleep_forever()  # stopped in a moment, releasing the lease
            await self._connect()
            ending = await self._serve_connection()
            if self._handing_over:
                self._handed_over.set()
                continue
            outcome = self._verdict or outcome_for(
                reaction_for(self.policy, ending, pairing=self._pairing), ending, self._wall_now()
            )
            self._status(outcome.status, outcome.reason, until=outcome.until)
            _LOG.info("session %s: connection ended (%s) → %s", self.session_id, ending, outcome.status)
            if outcome.exit is not None:
                if self._logout_done is not None:  # our own logout ended it: let its asker have the answer
                    with trio.move_on_after(LOGOUT_ANSWER_WAIT):
                        await self._logout_done.wait()
                raise outcome.exit
            # 515 "restart required": reconnect now, in place; not a failure.

    async def _connect(self) -> None:
        """Open a connection: through the upstream gate, then the connect limiter.

        While WhatsApp is unreachable the session waits at the shared gate (status
        ``backoff`` with the next trial's time) instead of burning its own backoff
        and breaker: the outage is not this session's fault.
        """
        self._connected = self._pairing = False
        self._verdict = None
        gate, unreachable = self.deps.upstream, "WhatsApp unreachable"
        while True:
            if gate.mode is UpstreamMode.DOWN:
                until = self.ctx.system.wall_time(gate.reopens_at)
                self._status(SessionStatus.BACKOFF, f"{unreachable}; waiting for a trial connect", until=until)
            async with gate.attempt() as attempt:
                self._status(SessionStatus.CONNECTING, "connecting")
                async with self.deps.limiter.slot():
                    with trio.move_on_after(self.policy.stuck_connecting_timeout) as stuck:
                        try:
                            await self.driver.connect()
                        except DriverConnectError as exc:
                            if exc.code is None:
                                attempt.unreachable(str(exc))
                                unreachable = f"WhatsApp unreachable: {exc}"
                                self._status(SessionStatus.DISCONNECTED, unreachable)
                                continue
                            attempt.reached()  # WhatsApp answered, with a reason: the policy decides
                            self._refused(Disconnected(exc.code, str(exc)))
                if stuck.cancelled_caught:
                    self._status(SessionStatus.DISCONNECTED, "stuck connecting")
                    raise StuckConnecting(f"connect() did not return within {self.policy.stuck_connecting_timeout} s")
                attempt.reached()
                self._last_evidence = trio.current_time()
                return

    def _refused(self, refusal: Disconnected) -> None:
        outcome = outcome_for(reaction_for(self.policy, refusal), refusal, self._wall_now())
        self._status(outcome.status, outcome.reason, until=outcome.until)
        raise outcome.exit or SessionDisconnected(refusal.code, refusal.reason)

    async def _serve_connection(self) -> object:
        """Handle one connection's events; return its ending event."""
        events = self.driver.events
        self._serving = True
        try:
            if self._handing_over:  # connected just as the hand-over was asked for: close it again
                self.ctx.nursery.start_soon(self.driver.stop)
            return await self._serve_events(events)
        finally:
            self._serving = False

    async def _serve_events(self, events: trio.MemoryReceiveChannel) -> object:
        async with trio.open_nursery() as nursery:
            self._connection_nursery = nursery  # calls and presence work alongside the events
            nursery.start_soon(self._watchdog)
            nursery.start_soon(self._pairing_deadline)
            inbound = InboundBatches(nursery, self._inbound, _chat, INBOUND_BATCHES, INBOUND_HELD)
            event: object = None  # an event read ahead while draining the waiting messages
            while True:
                if event is None:
                    try:
                        event = await events.receive()
                    except trio.EndOfChannel:
                        break
                self._last_evidence = trio.current_time()
                if isinstance(event, ENDING_EVENTS):
                    if self._handing_over:  # the new owner gets only what is stored (or never receipted)
                        await inbound.wait_empty()
                    nursery.cancel_scope.cancel()
                    return event
                if isinstance(event, Message):
                    messages, event = self._drain_messages(event)
                    await inbound.put(messages)
                elif isinstance(event, Undecryptable):  # its placeholder keeps its place in the chat
                    await self._handle(event)
                    await inbound.put([event.placeholder()])
                    event = None
                elif isinstance(event, LidMapped):  # merged only after the messages before it are stored
                    await inbound.wait_empty()
                    await self._through_store(self.deps.inbound.learn, event)
                    event = None
                else:
                    await self._handle(event)
                    event = None
        raise ConnectionDead("the driver closed its event stream")

    def _drain_messages(self, first: Message) -> tuple[list[Message], object]:
        """``first`` and the messages already waiting behind it (at most INBOUND_HELD), plus the
        event that ended the run (None when the channel ran dry first)."""
        batch = [first]
        while len(batch) < INBOUND_HELD:
            try:
                event = self.driver.events.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return batch, None
            if not isinstance(event, Message):
                return batch, event
            batch.append(event)
        return batch, None

    async def _handle(self, event: object) -> None:
        limit = self.policy.qr_limit
        match event:
            case Qr(code, index, _):
                self._pairing = True
                if index > limit:
                    await self._give_up_pairing(f"QR limit reached ({limit} codes not scanned)")
                else:
                    self._status(SessionStatus.QR, f"QR {index}/{limit}", qr=code, qr_index=index)
            case PairingCode(code, _):
                self._pairing = True
                self._status(SessionStatus.PAIRING, "pairing code issued", pairing_code=code)
            case PairSuccess(jid):
                self._status(SessionStatus.PAIRING, "paired", jid=jid)
            case Connected(jid):
                self._connected, self._pairing, self._keepalive_lost_at = True, False, None
                self._status(SessionStatus.CONNECTED, "connected", jid=jid)
                self._subscribed = set()
                self._connection_nursery.start_soon(self._presence_on_connect)
            case KeepaliveLost(errors):
                if self._keepalive_lost_at is None:
                    self._keepalive_lost_at = trio.current_time()
                    self._wake.set()
                self._status(SessionStatus.DEGRADED, f"keepalive lost ({errors} errors)")
            case KeepaliveRestored():
                self._keepalive_lost_at = None
                self._status(SessionStatus.CONNECTED, "keepalive restored")
            case Receipt():
                await self._through_store(self.deps.inbound.receipt, event)
            case Presence(jid):
                self.caches.contacts.put(jid, event)
                if self.deps.presence is not None:
                    self.deps.presence(self.session_id, self.tenant_id, event)
            case CallOffer():
                self._connection_nursery.start_soon(self._call, event)
            case HistoryChunk():  # imported in order, before the events behind it (idempotent with them)
                await self._through_store(self.deps.inbound.history, event)
            case OfflineSyncDone(count):
                _LOG.info("session %s: offline sync done (%d items)", self.session_id, count)
            case Undecryptable(message_id, chat_jid):
                _LOG.warning("session %s: undecryptable message %s in %s", self.session_id, message_id, chat_jid)

    async def _inbound(self, batch: list[Message]) -> None:
        """Store the batch, *then* acknowledge all of it (the driver releases it from its journal):
        a crash in between means a replay, never loss. Unwanted groups are only acknowledged (the sink
        decides on status posts, newsletters and broadcasts, by the session's options); ids this session
        stored recently (a re-delivery) are not stored again. A placeholder (an undecryptable message) is
        neither acknowledged nor remembered: WhatsApp re-sends its message under the same id."""
        fresh = [
            message for message in batch
            if (self.policy.allow_groups or not message.is_group)
            and message.id not in self.caches.messages
        ]
        if fresh:
            await self._through_store(self.deps.inbound.deliver, fresh)
            self._connection_nursery.start_soon(self._subscribe_writers, fresh)
            for message in fresh:
                if message.kind is MessageKind.UNDECRYPTABLE:
                    continue
                self.caches.messages.put(message.id, True)
                self.caches.chats.put(message.chat_jid, message.timestamp)
                self.caches.contacts.put(message.sender_jid, message.push_name)
        await self.driver.ack(*(message.id for message in batch if message.kind is not MessageKind.UNDECRYPTABLE))

    async def _call(self, offer: CallOffer) -> None:
        """Announce a call; decline it and answer the caller when the session's options say so.
        A rejection or reply that fails is logged: a call is not the connection's health."""
        options: SessionOptions = await self._through_store(self.deps.inbound.call, offer)
        if not options.reject_calls:
            return
        try:
            await self.driver.reject_call(offer.call_from, offer.call_id)
            if options.call_reply:
                await self.driver.send_text(offer.caller, options.call_reply, f"call-reply-{offer.call_id}")
        except DriverError as exc:
            _LOG.warning("session %s: call %s from %s not rejected/answered: %s", self.session_id, offer.call_id,
                         offer.caller, exc)

    async def _send_text(self, to: str, text: str, message_id: str, quote: Quote | None) -> Any:
        """Send, after showing "typing..." for the session's ``typing_seconds`` (then cleared).
        A typing indicator that fails never fails the send."""
        options: SessionOptions = await self._through_store_for(self.deps.inbound.options)
        if options.typing_seconds <= 0:
            return await self.driver.send_text(to, text, message_id, quote)
        await self._presence_op(self.driver.send_chat_state, to, True)
        await trio.sleep(options.typing_seconds)
        try:
            return await self.driver.send_text(to, text, message_id, quote)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(PRESENCE_OP_TIMEOUT):
                await self._presence_op(self.driver.send_chat_state, to, False)

    async def _presence_on_connect(self) -> None:
        """Show the account online and subscribe to the active tickets' contacts, as the options say."""
        options: SessionOptions = await self._through_store_for(self.deps.inbound.options)
        if options.available:
            await self._presence_op(self.driver.set_presence, True)
        if options.subscribe_presence:
            for jid in await self._through_store_for(self.deps.inbound.presence_targets):
                await self._subscribe(jid)

    async def _subscribe_writers(self, messages: list[Message]) -> None:
        """Subscribe to the presence of contacts who just wrote (once per connection), if wanted."""
        writers = {m.chat_jid for m in messages if not (m.from_me or m.is_group or m.is_broadcast)
                   and m.chat_jid.endswith(("@s.whatsapp.net", "@lid"))} - self._subscribed
        if writers and (await self._through_store_for(self.deps.inbound.options)).subscribe_presence:
            for jid in sorted(writers):
                await self._subscribe(jid)

    async def _subscribe(self, jid: str) -> None:
        if jid not in self._subscribed and len(self._subscribed) < MAX_SUBSCRIBED:
            self._subscribed.add(jid)
            await self._presence_op(self.driver.subscribe_presence, jid)

    async def _presence_op(self, method, *args) -> None:
        """A presence operation: bounded in time, its failure logged (presence is a courtesy)."""
        with trio.move_on_after(PRESENCE_OP_TIMEOUT):
            try:
                await method(*args)
            except DriverError as exc:
                _LOG.info("session %s: %s%r failed: %s", self.session_id, method.__name__, args, exc)

    async def _through_store_for(self, read) -> Any:
        """``read(session_id)`` through the store gate (see :meth:`_through_store`)."""
        return await self.deps.store_gate.call(read, self.session_id)

    async def _through_store(self, write, payload) -> Any:
        """``write(session, tenant, payload)`` through the store gate: while the store is
        unreachable the session waits there (holding the unacknowledged messages), and
        neither fails nor spends its backoff: the outage is not its fault."""

        def unavailable(exc: BaseException) -> None:
            _LOG.warning("session %s: store unavailable, waiting at the store gate: %s", self.session_id, exc)

        return await self.deps.store_gate.call(write, self.session_id, self.tenant_id, payload,
                                               on_unavailable=unavailable)

    # -- evidence-based health -------------------------------------------------

    async def _watchdog(self) -> None:
        """Probe the connection; failed probes or lasting keepalive loss → restart.

        Probes run every ``probe_interval`` (drawn per probe, so sessions do not
        probe in lockstep), sooner after ``inbound_silence`` without any event, and
        again within 5 s after a failure. ``probe_failures`` failures in a row, or
        keepalive lost for ``degraded_timeout``, raise ConnectionDead: a targeted
        restart of this session only.
        """
        policy, rng = self.policy, self.ctx.system.rng
        failures = 0
        while True:
            now = trio.current_time()
            if failures:
                due = now + min(policy.probe_interval[0], 5.0)
            else:
                due = min(now + rng.uniform(*policy.probe_interval), self._last_evidence + policy.inbound_silence)
            if self._keepalive_lost_at is not None:
                due = min(due, self._keepalive_lost_at + policy.degraded_timeout)
            self._wake = trio.Event()
            with trio.move_on_at(due):
                await self._wake.wait()
            if not self._connected or self._handing_over:  # a hand-over closes the connection on purpose:
                continue  # probing it would fail, and kill the session before it stored what it delivered
            lost_at = self._keepalive_lost_at
            if lost_at is not None and trio.current_time() - lost_at >= policy.degraded_timeout:
                raise ConnectionDead(f"keepalive lost for {policy.degraded_timeout} s")
            if lost_at is not None:
                continue
            try:
                await self.driver.probe(policy.probe_timeout)
            except (RequestError, NotConnectedError) as exc:
                failures += 1
                self._status(SessionStatus.DEGRADED, f"probe failed ({failures}/{policy.probe_failures}): {exc}")
                if failures >= policy.probe_failures:
                    raise ConnectionDead(f"{failures} probes failed in a row; last: {exc}") from exc
                continue
            self._last_evidence = trio.current_time()
            if failures:
                failures = 0
                self._status(SessionStatus.CONNECTED, "probe answered again")

    async def _pairing_deadline(self) -> None:
        """A session that never connects within ``never_connected_timeout`` needs auth."""
        await trio.sleep(self.policy.never_connected_timeout)
        if not self._connected:
            await self._give_up_pairing(f"not connected within {self.policy.never_connected_timeout} s")

    async def _give_up_pairing(self, reason: str) -> None:
        self._verdict = Outcome(SessionStatus.NEEDS_AUTH, reason, StopForGood(reason))
        await self.driver.stop()  # the ending event (Disconnected, local) follows

    # -- helpers ---------------------------------------------------------------

    def _status(self, status: SessionStatus, reason: str = "", **detail) -> None:
        self.deps.board.set(self.session_id, self.tenant_id, status, reason, **detail)

    def _wall_now(self) -> float:
        return self.ctx.system.wall_time(trio.current_time())
