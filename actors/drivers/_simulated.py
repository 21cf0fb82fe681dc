"""``SimulatedDriver``: the :class:`Driver` protocol over a websocket to the simulated WhatsApp server.

It speaks the JSON protocol documented in :mod:`actors.simulator` and maps its
frames to the normalized events. Faults are real: a dropped socket is a real
``ConnectionClosed``, a stalled server really stops answering pings. The
driver keeps the rules of :mod:`actors.drivers._protocol` (one ending event per
connection, deferred acks, real probes).

Inbound durability, as on real WhatsApp (DESIGN §9). The reader tells the server
``received`` the moment it reads a ``messages`` frame - whatsmeow's delivery
receipt, before any application code ran; in its default (whatsmeow) delivery
mode the simulator then forgets those messages for good. The reader next appends
them to the inbound journal (:mod:`actors.drivers._journal`, when ``journal_dir``
is set): the simulated sessions of a process share one file,
``<journal_dir>/simulated.journal``, keyed by session and message id, and a frame's
messages are one ``write()`` on trio's thread (a write survives the death of the
process). Receipt and append are shielded from cancellation together, so a
session restart cannot fall between them; only then do the messages go to the
session. The process's syncer thread fsyncs the journal within ``SYNC_DELAY``
(5 ms) of an append, a group commit across every session, without holding up
the messages: the store commit they race to needs no fsync of ours (and the
receipt that WhatsApp acts on went out before either). :meth:`SimulatedDriver.ack`
releases them once stored: it only notes the keys, which the syncer writes with
its next pass (a release that never lands only replays a stored message). Each
new connection first replays what the journal still holds for its session (a
previous process died, or a connection ended with messages unstored), before its
own events. What remains exposed is the window between the ``received`` frame
and the append (the receipt's own send). The server's welcome names its delivery mode and the
driver sends only the signal that mode acts on: ``received`` (whatsmeow) or ``ack`` (idealised),
never both (each was a socket send here and a parse there per batch, for nothing). A frame's
messages reach the session without a schedule point between them, so it wakes once for all.

Why one file, written on trio's thread (measured on ``bench/pipeline.py``): a
``trio.to_thread`` hop per frame into per-session files ran at 1.6k-2.7k msg/s
beside 5.7k without the journal; one appender thread for every session, woken
per pass, still added ~20 ms at the median between receipt and forwarding, and
most of the p99 at 1,000 msg/s. Under a busy trio thread every GIL re-acquisition
of another thread waits for the switch interval (5 ms), so what costs is the
number of thread hops, not the bytes; the write itself takes ~0.1 ms.

Credentials handed out at pairing are kept by the config's ``keeper`` (a
:class:`CredentialKeeper`: the node gives one backed by PostgreSQL, so every node of a
cluster reaches them and a failover reconnects without a QR code), else in
``<auth_dir>/<session_id>.json`` (written atomically off the trio thread), else only in
memory; they are deleted when the account is logged out.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio
import trio_websocket

from ._errors import (
    DriverConnectError,
    connect_cause,
    DriverStateError,
    MediaNotFoundError,
    NotConnectedError,
    ProbeTimeoutError,
    RequestError,
    RequestInterruptedError,
    RequestTimeoutError,
)
from ._events import (
    CallOffer,
    ClientOutdated,
    Connected,
    Disconnected,
    Event,
    HistoryChat,
    HistoryChunk,
    KeepaliveLost,
    KeepaliveRestored,
    LidMapped,
    LoggedOut,
    MediaKind,
    MediaRef,
    Message,
    OfflineSyncDone,
    OutboundMedia,
    OutboundOperation,
    Quote,
    PairingCode,
    PairSuccess,
    Presence,
    PresenceState,
    Qr,
    ReasonCode,
    Receipt,
    ReceiptKind,
    Replaced,
    SendResult,
    TemporaryBan,
    Undecryptable,
)
from ._journal import Journal, close_shared, open_shared

log = logging.getLogger(__name__)

JOURNAL_FILE = "simulated.journal"
"""The journal shared by the simulated sessions of a process, under ``journal_dir``."""

KEY_SEPARATOR = "\x1f"
"""Between the session id and the message id in a journal key (never in either: ASCII unit separator)."""

_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
# WhatsApp reasons travel as websocket close codes 4000 + reason (see actors.simulator).
_CLOSE_CODE_BASE = 4000
_LOGGED_OUT_CODES = frozenset({ReasonCode.LOGGED_OUT, ReasonCode.FORBIDDEN, ReasonCode.BANNED})


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"SimulatedDriverConfig.{attribute.name} must be > 0, got {value!r}")


class CredentialKeeper(Protocol):
    """Where a session's credentials live when not in ``auth_dir`` (the store, for a cluster)."""

    async def load(self, session_id: str) -> str | None: ...

    async def save(self, session_id: str, creds: str) -> None: ...

    async def forget(self, session_id: str) -> None: ...


@attrs.frozen
class SimulatedDriverConfig:
    """Where the simulator is and how patient the driver is with it.

    ``url`` is the simulator's base URL (``ws://127.0.0.1:8765``). Keepalive
    mirrors whatsmeow (a ping every ~20 s, ``KeepaliveLost`` when one goes
    unanswered for ``keepalive_timeout``).
    """

    url: str = attrs.field()
    auth_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    keeper: CredentialKeeper | None = None  # takes precedence over auth_dir (see _load_creds)
    # Where the inbound journal lives (JOURNAL_FILE, shared by the process's simulated sessions);
    # None: no journal, messages are only as durable as the server's delivery mode makes them.
    journal_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    request_timeout: float = attrs.field(default=30.0, validator=_positive)
    keepalive_interval: float = attrs.field(default=20.0, validator=_positive)
    keepalive_timeout: float = attrs.field(default=10.0, validator=_positive)
    close_timeout: float = attrs.field(default=2.0, validator=_positive)
    # Events buffered for a session that is busy storing: as many as the simulator's
    # delivery window (256), so the reader rarely waits on the session and keeps
    # answering probes; when it is full, backpressure reaches the server.
    events_capacity: int = attrs.field(default=256, validator=_positive)

    @url.validator
    def _check_url(self, attribute: attrs.Attribute, value: str) -> None:
        if not isinstance(value, str) or not value.startswith(("ws://", "wss://")):
            raise ValueError(f"SimulatedDriverConfig.url must start with ws:// or wss://, got {value!r}")


@attrs.define(eq=False)
class _Reply:
    done: trio.Event = attrs.field(factory=trio.Event)
    frame: dict[str, Any] | None = None


@attrs.define(eq=False)
class _Connection:
    ws: trio_websocket.WebSocketConnection
    rids: itertools.count = attrs.field(factory=itertools.count)
    pending: dict[int, _Reply] = attrs.field(factory=dict)
    close_frame: dict[str, Any] | None = None
    local: str | None = None  # "stop" or "logout" once zapvisor ends it
    # The server's delivery mode, from its welcome: "whatsmeow" acts on receipts only, "idealised"
    # on acks only; the driver sends just that signal (None: unknown, both).
    delivery: str | None = None
    open: bool = True
    done: trio.Event = attrs.field(factory=trio.Event)

    def finish(self) -> None:
        self.open = False
        for reply in self.pending.values():
            reply.done.set()


def _ending_for(code: int, reason: str, frame: dict[str, Any], local: bool) -> Event:
    """The normalized ending event of a WhatsApp reason code."""
    if code in _LOGGED_OUT_CODES:
        return LoggedOut(reason=reason, code=code, local=local)
    match code:
        case ReasonCode.TEMPORARY_BAN:
            return TemporaryBan(expires_at=frame.get("expires_at"), ban_code=frame.get("ban_code"))
        case ReasonCode.CLIENT_OUTDATED:
            return ClientOutdated()
        case ReasonCode.REPLACED:
            return Replaced()
        case _:
            return Disconnected(code=code, reason=reason, local=local)


def _message(msg: dict[str, Any]) -> Message:
    media = msg.get("media")
    ref = None
    kind, payload = msg.get("kind") or "text", msg.get("payload") or {}
    if media is not None:
        ref = MediaRef(ref=media["ref"], kind=MediaKind(media["kind"]), mimetype=media["mimetype"],
                       size=media.get("size"), file_name=media.get("file_name"), sha256=media.get("sha256"))
        if kind == "text":  # an attachment sent without a kind: the attachment's
            kind, payload = ref.kind.value, {"mimetype": ref.mimetype}
            if ref.kind is MediaKind.DOCUMENT:
                payload["file_name"] = ref.file_name
    chat, sender = msg["chat"], msg["sender"]
    if msg.get("sender_alt") and chat == sender:  # a LID sender with its phone JID alongside (as neonize)
        chat = sender = msg["sender_alt"]
    return Message(id=msg["id"], chat_jid=chat, sender_jid=sender, from_me=bool(msg["from_me"]),
                   timestamp=float(msg["ts"]), text=msg.get("text") or "", media=ref,
                   is_group=bool(msg.get("is_group")), is_broadcast=bool(msg.get("is_broadcast")),
                   push_name=msg.get("push_name"), quoted_id=msg.get("quoted_id"), kind=kind, payload=payload,
                   target_id=msg.get("target_id"))


@attrs.frozen
class Journaled:
    """One session's entries in a node's simulated journal, decoded (see :func:`journaled`)."""

    session_id: str
    keys: tuple[str, ...]  # every entry of the session, to release once its messages are stored
    events: tuple[LidMapped | Message, ...]  # in journal order; a LID pair before the message that carried it


def journaled(pending: list[tuple[str, bytes]]) -> list[Journaled]:
    """The entries of :data:`JOURNAL_FILE` (``Journal.pending()``), grouped by session in their order,
    decoded as a connection's replay decodes them: what a node replays at boot (``actors.node._recovery``).

    An entry that does not decode (only a bug writes one) is logged and kept among ``keys``
    without an event, so it is released with the rest rather than replayed at every boot.
    """
    grouped: dict[str, tuple[list[str], list[LidMapped | Message]]] = {}
    for key, payload in pending:
        session_id, _, message_id = key.partition(KEY_SEPARATOR)
        keys, events = grouped.setdefault(session_id, ([], []))
        keys.append(key)
        try:
            msg = json.loads(payload)
            message = _message(msg)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("journal entry %s of session %s unreadable, dropped: %r", message_id, session_id, exc)
            continue
        if msg.get("sender_alt"):
            events.append(LidMapped(lid=msg["sender"], pn=msg["sender_alt"]))
        events.append(message)
    return [Journaled(sid, tuple(keys), tuple(events)) for sid, (keys, events) in grouped.items()]


def _event(frame: dict[str, Any]) -> Event | None:
    """Translate one server event frame (``None`` for frames that are not events)."""
    match frame.get("ev"):
        case "qr":
            return Qr(code=frame["code"], index=int(frame["index"]), expires_at=frame.get("expires_at"))
        case "pairing_code":
            return PairingCode(code=frame["code"], expires_at=frame.get("expires_at"))
        case "connected":
            return Connected(jid=frame.get("jid"))
        case "offline_sync_done":
            return OfflineSyncDone(count=int(frame.get("count", 0)))
        case "receipt":
            return Receipt(message_ids=frame["ids"], chat_jid=frame["chat"], kind=ReceiptKind(frame["kind"]),
                           timestamp=float(frame["ts"]), sender_jid=frame.get("sender"))
        case "presence":
            return Presence(jid=frame["jid"], state=PresenceState(frame["state"]), chat_jid=frame.get("chat"),
                            last_seen=frame.get("last_seen"))
        case "lid_mapping":
            return LidMapped(lid=frame["lid"], pn=frame["pn"])
        case "call_offer":
            caller = frame.get("from_alt") or frame["from"]
            return CallOffer(call_id=frame["call_id"], caller=caller, call_from=frame["from"],
                             timestamp=float(frame["ts"]), is_video=bool(frame.get("video")))
        case "history":
            chats = [HistoryChat(jid=c["jid"], name=c.get("name") or "", is_group=bool(c.get("is_group")),
                                 messages=[_message(m) for m in c["msgs"]]) for c in frame["chats"]]
            return HistoryChunk(chats, frame.get("progress"), frame.get("sync_type") or "")
        case "undecryptable":
            return Undecryptable(id=frame["id"], chat_jid=frame["chat"], sender_jid=frame["sender"],
                                 timestamp=float(frame["ts"]), is_unavailable=bool(frame.get("unavailable")))
        case _:
            return None


def _write_creds(path: Path, creds: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"creds": creds}), encoding="utf-8")
    os.replace(tmp, path)


def _read_creds(path: Path) -> str | None:
    try:
        creds = json.loads(path.read_text(encoding="utf-8"))["creds"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        # Unreadable credentials cannot log in anyway: pair again (a QR code follows).
        log.warning("ignoring unreadable credentials file %s: %s", path, exc)
        return None
    return creds if isinstance(creds, str) else None


@attrs.define(eq=False)
class SimulatedDriver:
    """A session's driver for the simulated WhatsApp server (see the module docstring).

    Build one per session: ``SimulatedDriver("s-42", config)``;
    ``functools.partial(SimulatedDriver, config=config)`` is a ``DriverFactory``.
    Raises ``ValueError`` naming ``session_id`` when it is not a plain identifier.
    """

    session_id: str = attrs.field()
    config: SimulatedDriverConfig
    _events_send: trio.MemorySendChannel[Event] = attrs.field(init=False)
    _events_recv: trio.MemoryReceiveChannel[Event] = attrs.field(init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _conn: _Connection | None = attrs.field(default=None, init=False)
    _connecting: bool = attrs.field(default=False, init=False)
    _creds: str | None = attrs.field(default=None, init=False)
    _creds_loaded: bool = attrs.field(default=False, init=False)
    _journal: Journal | None = attrs.field(default=None, init=False)
    _io: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(1), init=False)

    @session_id.validator
    def _check_session_id(self, attribute: attrs.Attribute, value: str) -> None:
        if not isinstance(value, str) or not _SESSION_ID.match(value):
            raise ValueError(f"SimulatedDriver.session_id must match {_SESSION_ID.pattern}, got {value!r}")

    def __attrs_post_init__(self) -> None:
        self._events_send, self._events_recv = trio.open_memory_channel(self.config.events_capacity)

    @property
    def events(self) -> trio.MemoryReceiveChannel[Event]:
        return self._events_recv

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (a local fact, not a liveness proof: use ``probe``)."""
        return self._conn is not None

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host connections until cancelled; then the connection and ``events`` are closed.

        Opens the session's journal first (``OSError`` / ``JournalError`` if it
        cannot be read); it is synced and closed on the way out.
        """
        if self._nursery is not None:
            raise DriverStateError(f"driver {self.session_id} is already running")
        if self.config.journal_dir is not None:
            self._journal = await trio.to_thread.run_sync(
                open_shared, self.config.journal_dir / JOURNAL_FILE, limiter=self._io)
        try:
            async with self._events_send, trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            journal, self._journal = self._journal, None
            if journal is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(close_shared, journal, limiter=self._io)

    def _key(self, message_id: str) -> str:
        return f"{self.session_id}{KEY_SEPARATOR}{message_id}"

    async def connect(self) -> None:
        """Open one connection (see the protocol). Raises ``DriverConnectError``, ``DriverStateError``."""
        if self._nursery is None:
            raise DriverStateError(f"driver {self.session_id}: connect() needs run() to be running")
        if self._conn is not None or self._connecting:
            raise DriverStateError(f"driver {self.session_id} is already connected or connecting")
        self._connecting = True
        try:
            await self._nursery.start(self._connection)
        finally:
            self._connecting = False

    async def stop(self) -> None:
        """Close the current connection (``Disconnected(local=True)`` follows); idempotent."""
        conn = self._conn
        if conn is None:
            return
        conn.local = conn.local or "stop"
        with trio.move_on_after(self.config.close_timeout):
            await conn.ws.aclose()  # on timeout its cleanup closes the TCP stream
        await conn.done.wait()

    async def logout(self) -> None:
        """Unlink the device; credentials are wiped and ``LoggedOut(local=True)`` follows.

        Without an open connection only the stored credentials are wiped
        (WhatsApp is not told; the next connect shows a QR code) and no event
        follows.
        """
        conn = self._conn
        if conn is None or not conn.open:
            await self._forget_creds()
            return
        conn.local = "logout"
        await self._request(conn, "logout")
        with trio.move_on_after(self.config.close_timeout):
            await conn.done.wait()
        if not conn.done.is_set():
            await self.stop()
        await self._forget_creds()

    # -- the connection task ----------------------------------------------------------

    async def _connection(self, *, task_status: trio.TaskStatus[None]) -> None:
        creds = await self._load_creds()
        url = self.config.url.rstrip("/") + "/wa"
        conn: _Connection | None = None
        ending: Event = Disconnected(code=None, reason="connection lost")
        try:
            try:
                async with trio_websocket.open_websocket_url(
                    url, connect_timeout=self.config.connect_timeout, disconnect_timeout=self.config.close_timeout
                ) as ws:
                    with trio.move_on_after(self.config.connect_timeout) as handshake:
                        hello = {"op": "hello", "session": self.session_id, "creds": creds}
                        await ws.send_message(json.dumps(hello))
                        first = json.loads(await ws.get_message())
                    if handshake.cancelled_caught:
                        raise DriverConnectError(f"{url}: no answer to hello within {self.config.connect_timeout}s")
                    conn = self._conn = _Connection(ws)
                    if isinstance(first, dict) and first.get("ev") == "welcome":
                        conn.delivery = first.get("delivery")
                    task_status.started()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._keepalive, conn)
                        ending = await self._serve(conn, first)
                        nursery.cancel_scope.cancel()
            except (OSError, trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, ValueError) as exc:
                if conn is None:
                    raise DriverConnectError(f"cannot connect to {url}: {connect_cause(exc)}") from exc
                ending = Disconnected(code=None, reason=f"connection lost: {exc}")
            finally:
                if conn is not None:
                    self._conn = None
                    conn.finish()
            if isinstance(ending, LoggedOut):
                await self._forget_creds()
            await self._events_send.send(ending)
        finally:
            if conn is not None:
                conn.done.set()

    async def _serve(self, conn: _Connection, first: dict[str, Any]) -> Event:
        """Handle frames until the socket closes; returns the connection's ending event."""
        frame: dict[str, Any] | None = first if isinstance(first, dict) else None
        await self._replay()
        while True:
            if frame is not None:
                await self._handle(conn, frame)
            try:
                frame = json.loads(await conn.ws.get_message())
            except trio_websocket.ConnectionClosed as exc:
                return self._ending(conn, exc.reason.code if exc.reason else None)
            except ValueError:
                frame = None
            if not isinstance(frame, dict):
                log.warning("driver %s: ignoring a frame that is not a JSON object", self.session_id)
                frame = None

    def _ending(self, conn: _Connection, ws_code: int | None) -> Event:
        if conn.close_frame is not None:
            frame = conn.close_frame
            code = int(frame["code"])
            local = bool(frame.get("local")) or conn.local is not None
            return _ending_for(code, str(frame.get("reason", "")), frame, local)
        if conn.local is not None:
            return Disconnected(code=None, reason="stopped", local=True)
        if ws_code is not None and _CLOSE_CODE_BASE < ws_code < _CLOSE_CODE_BASE + 1000:
            return _ending_for(ws_code - _CLOSE_CODE_BASE, "", {}, False)
        return Disconnected(code=None, reason=f"connection lost (websocket close {ws_code})")

    async def _handle(self, conn: _Connection, frame: dict[str, Any]) -> None:
        if "re" in frame:
            reply = conn.pending.get(frame["re"])
            if reply is not None:  # else: an answer that arrived after its caller gave up
                reply.frame = frame
                reply.done.set()
            return
        kind = frame.get("ev")
        if kind == "close":
            conn.close_frame = frame
            return
        if kind == "messages":
            await self._messages(conn, frame.get("msgs"))
            return
        try:
            if kind == "pair_success":
                await self._save_creds(str(frame["creds"]))
                event: Event | None = PairSuccess(jid=frame["jid"])
            else:
                event = _event(frame)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("driver %s: malformed %r frame: %s", self.session_id, kind, exc)
            return
        if event is not None:
            await self._events_send.send(event)

    async def _messages(self, conn: _Connection, batch: object) -> None:
        """One ``messages`` frame: receipt it, append it to the journal, then each message becomes a :class:`Message` event.

        The ``received`` receipt goes first, as whatsmeow's does (see the module
        docstring). A malformed message is skipped (logged) and never receipted
        nor acknowledged, like WhatsApp's undecodable nodes; the rest of the batch
        still arrives.
        """
        if not isinstance(batch, list):
            log.warning("driver %s: malformed 'messages' frame: 'msgs' is not a list", self.session_id)
            return
        events: list[tuple[Message, dict[str, Any]]] = []
        for msg in batch:
            try:
                if not isinstance(msg, dict):
                    raise TypeError(f"a message is a JSON object, got {type(msg).__name__}")
                events.append((_message(msg), msg))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("driver %s: malformed message skipped: %r", self.session_id, exc)
        if not events:
            return
        for _, msg in events:  # the mapping goes first: the session merges before storing these
            await self._announce_lid(msg)
        if conn.delivery != "idealised":  # an idealised server ignores receipts: none is sent
            # Shielded, as a receipt without its append would lose the messages; with a deadline of
            # its own, as a stuck socket must not hold the shield. One scope: each costs a few
            # microseconds to enter and leave, per frame.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + self.config.close_timeout):
                try:
                    await conn.ws.send_message(json.dumps({"op": "received", "ids": [e.id for e, _ in events]}))
                except trio_websocket.ConnectionClosed:
                    pass  # the server may or may not have the receipt: journal them either way
        self._append(events)  # no checkpoint since the receipt's send: no cancellation falls between
        for event, _ in events:  # no schedule point per message while the session keeps up (the
            try:                  # receipt's send was this frame's): each cost a round of the event loop
                self._events_send.send_nowait(event)
            except trio.WouldBlock:
                await self._events_send.send(event)  # the session lags: backpressure

    def _append(self, events: list[tuple[Message, dict[str, Any]]]) -> None:
        """Journal one frame's messages: one ``write()`` on trio's thread (see the module docstring).

        An error is logged and the messages still flow: only a crash before they are
        stored would now lose them.
        """
        journal = self._journal
        if journal is None:
            return
        try:
            journal.append([(self._key(event.id), json.dumps(msg).encode()) for event, msg in events])
        except (OSError, ValueError) as exc:
            log.error("driver %s: %d messages not journaled: %r", self.session_id, len(events), exc)
            return
        journal.sync_soon()

    async def _keepalive(self, conn: _Connection) -> None:
        failures = 0
        while conn.open:
            await trio.sleep(self.config.keepalive_interval)
            try:
                await self._ping(conn, self.config.keepalive_timeout)
            except ProbeTimeoutError:
                failures += 1
                await self._events_send.send(KeepaliveLost(error_count=failures))
                continue
            except NotConnectedError:
                return
            if failures:
                failures = 0
                await self._events_send.send(KeepaliveRestored())

    # -- requests -------------------------------------------------------------------

    def _require(self) -> _Connection:
        conn = self._conn
        if conn is None or not conn.open:
            raise NotConnectedError(f"driver {self.session_id} has no open connection")
        return conn

    async def _request(self, conn: _Connection, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        rid = next(conn.rids)
        reply = conn.pending[rid] = _Reply()
        try:
            try:
                await conn.ws.send_message(json.dumps({"op": op, "rid": rid, **fields}))
            except trio_websocket.ConnectionClosed as exc:
                raise NotConnectedError(f"driver {self.session_id}: connection closed during {op}") from exc
            wait = self.config.request_timeout if timeout is None else timeout
            with trio.move_on_after(wait):
                await reply.done.wait()
        finally:
            conn.pending.pop(rid, None)
        frame = reply.frame
        if frame is None:
            if not conn.open:
                raise RequestInterruptedError(f"driver {self.session_id}: connection ended during {op}")
            raise RequestTimeoutError(f"driver {self.session_id}: no answer to {op} within {wait}s")
        if not frame.get("ok"):
            code = frame.get("code")
            message = f"{op} refused: {frame.get('error', 'unknown error')}"
            raise (MediaNotFoundError if code == 404 else RequestError)(message, code=code)
        return frame

    async def _ping(self, conn: _Connection, timeout: float) -> float:
        started = trio.current_time()
        try:
            await self._request(conn, "ping", timeout)
        except RequestTimeoutError as exc:
            raise ProbeTimeoutError(f"driver {self.session_id}: probe unanswered within {timeout}s") from exc
        return trio.current_time() - started

    async def probe(self, timeout: float = 10.0) -> float:
        return await self._ping(self._require(), timeout)

    async def send_text(self, to: str, text: str, request_key: str, quote: Quote | None = None) -> SendResult:
        """Send ``text``; WhatsApp (the simulator) names the message. ``request_key`` is not sent:
        WhatsApp takes no client id, and this driver keeps no memory of past sends."""
        quoted = {} if quote is None else {"quoted_id": quote.wa_id}
        frame = await self._request(self._require(), "send", to=to, text=text, media=None, **quoted)
        return SendResult(message_id=frame["id"], timestamp=float(frame["ts"]))

    async def send_media(self, to: str, media: OutboundMedia, request_key: str) -> SendResult:
        """Send an attachment (see :meth:`send_text`)."""
        wire = {"kind": media.kind.value, "mimetype": media.mimetype, "file_name": media.file_name,
                "data": base64.b64encode(media.data).decode()}
        frame = await self._request(self._require(), "send", to=to, text=media.caption, media=wire)
        return SendResult(message_id=frame["id"], timestamp=float(frame["ts"]))

    async def send_operation(self, chat_jid: str, operation: OutboundOperation, request_key: str) -> SendResult:
        """React to, edit or delete a message (see :meth:`send_text`): a ``send`` with the operation's kind."""
        frame = await self._request(self._require(), "send", to=chat_jid, text=operation.text, media=None,
                                    kind=str(operation.kind), target_id=operation.target_id,
                                    target_from_me=operation.target_from_me)
        return SendResult(message_id=frame["id"], timestamp=float(frame["ts"]))

    async def download_media(self, ref: MediaRef) -> bytes:
        frame = await self._request(self._require(), "download", ref=ref.ref)
        return base64.b64decode(frame["data"])

    async def mark_read(self, chat_jid: str, message_ids: tuple[str, ...], sender_jid: str | None = None) -> None:
        await self._request(self._require(), "mark_read", chat=chat_jid, ids=list(message_ids), sender=sender_jid)

    async def set_presence(self, available: bool) -> None:
        await self._request(self._require(), "presence", state="available" if available else "unavailable")

    async def send_chat_state(self, chat_jid: str, composing: bool) -> None:
        await self._request(self._require(), "chat_state", chat=chat_jid, state="composing" if composing else "paused")

    async def subscribe_presence(self, jid: str) -> None:
        await self._request(self._require(), "subscribe_presence", jid=jid)

    async def reject_call(self, call_from: str, call_id: str) -> None:
        await self._request(self._require(), "reject_call", call_id=call_id, call_from=call_from)

    async def pair_phone(self, phone_number: str) -> str:
        """Raises ``ValueError`` naming ``phone_number`` unless it is 8-15 digits (``+``, spaces, dashes allowed)."""
        digits = re.sub(r"[\s+\-()]", "", phone_number)
        if not digits.isdigit() or not 8 <= len(digits) <= 15:
            raise ValueError(f"phone_number must be 8 to 15 digits with the country code, got {phone_number!r}")
        frame = await self._request(self._require(), "pair_phone", number=digits)
        return frame["code"]

    async def _replay(self) -> None:
        """Hand the session what the journal still holds (stored or not: the store dedupes), in order."""
        journal = self._journal
        if journal is None:
            return
        prefix = self._key("")
        pending = await trio.to_thread.run_sync(journal.pending, limiter=self._io)
        for message_id, payload in pending:
            if not message_id.startswith(prefix):
                continue  # another session's
            try:
                msg = json.loads(payload)
                event = _message(msg)
            except (KeyError, TypeError, ValueError) as exc:  # written by this driver: only a bug gets here
                log.error("driver %s: journal entry %s unreadable, dropped: %r", self.session_id, message_id, exc)
                journal.release_soon([message_id])
                continue
            await self._announce_lid(msg)
            await self._events_send.send(event)

    async def _announce_lid(self, msg: dict[str, Any]) -> None:
        """A message sent under a LID with its phone JID alongside: the pair, as neonize's driver announces it."""
        if msg.get("sender_alt"):
            await self._events_send.send(LidMapped(lid=msg["sender"], pn=msg["sender_alt"]))

    async def ack(self, *message_ids: str) -> None:
        """Acknowledge stored messages, all in one frame (only to a server that acts on acks: the
        whatsmeow mode, like WhatsApp, forgot them at the receipt); the syncer releases them from the journal."""
        if self._journal is not None and message_ids:
            self._journal.release_soon([self._key(message_id) for message_id in message_ids])
        conn = self._conn
        if conn is None or not conn.open or not message_ids or conn.delivery == "whatsmeow":
            return  # unacked on an idealised server: they stay queued there and come back on the next connection
        try:
            await conn.ws.send_message(json.dumps({"op": "ack", "ids": message_ids}))
        except trio_websocket.ConnectionClosed:
            return

    # -- credentials ------------------------------------------------------------------

    def _creds_path(self) -> Path | None:
        return None if self.config.auth_dir is None else self.config.auth_dir / f"{self.session_id}.json"

    async def _load_creds(self) -> str | None:
        """The keeper's credentials, else the file's (moved into the keeper on first use, so
        credentials paired before a cluster existed reach every node from then on)."""
        path, keeper = self._creds_path(), self.config.keeper
        if not self._creds_loaded:
            if keeper is not None:
                self._creds = await keeper.load(self.session_id)
            if self._creds is None and path is not None:
                self._creds = await trio.to_thread.run_sync(_read_creds, path)
                if self._creds is not None and keeper is not None:
                    await keeper.save(self.session_id, self._creds)
        self._creds_loaded = True
        return self._creds

    async def _save_creds(self, creds: str) -> None:
        self._creds = creds
        path, keeper = self._creds_path(), self.config.keeper
        if keeper is not None:
            await keeper.save(self.session_id, creds)
        elif path is not None:
            await trio.to_thread.run_sync(_write_creds, path, creds)

    async def _forget_creds(self) -> None:
        self._creds = None
        path, keeper = self._creds_path(), self.config.keeper
        if keeper is not None:
            await keeper.forget(self.session_id)
        if path is not None:
            await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
