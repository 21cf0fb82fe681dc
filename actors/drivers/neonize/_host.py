"""The neonize clients of one worker process, and the one lock around neonize's Go core.

Worker-side only (imports neonize). :class:`ClientHost` owns every ``NewClient``
of the worker and answers the daemon's calls (``call(op, args)``, blocking, run
on a pool thread by ``_worker``). Its rules come from what was measured on
neonize 0.5.2 (see ``_worker``'s docstring):

* **One lock, two modes.** Starting a connection (the first instants of the Go
  ``Neonize()`` call, which registers the client in a Go map) and ``Stop`` write
  Go's global maps: they take the lock *exclusively*. Every other call into Go
  (send, download, mark read, pair, logout, probe) reads those maps at its
  entry: it takes the lock *shared*, so calls of different clients still
  overlap each other, but never a start or a stop (see :class:`FfiLock` for
  why a writer need not wait for slow readers to finish). Concurrent unserialized connects abort the whole
  process with "fatal error: concurrent map writes".
* **Start and stop windows.** ``connect()`` blocks for the connection's whole
  life, so the exclusive hold covers its start only: until the first callback
  of that connection, its return, or :data:`SETTLE_S`, whichever comes first.
  ``Stop`` blocks while a dial is in progress: same window. A stop of a
  connection WhatsApp has not answered yet is deferred until it does (or the
  dial fails by itself).
* **Callbacks only enqueue.** whatsmeow delivers events from its own threads
  through a 100-entry queue; a callback that blocks stalls the account. Each
  callback puts the parsed protobuf on an unbounded ``SimpleQueue`` and returns;
  one converter thread maps them to normalized events in arrival order, applies
  the per-connection rules (QR limit, one ending event) and hands frames to the
  writer. Unbounded on purpose: its consumer never blocks on anything but the
  pipe to the daemon, whose reader applies the backpressure.
* **No call into Go for a connection that is not live.** Calls on a client that
  never connected can crash the process (``GetPNFromLID`` panics with a nil
  pointer on such a client); requests are refused with ``NotConnectedError``
  unless the connection has seen ``Connected``.
* **Resume a device by its full JID, and only one that exists.** whatsmeow
  finds a stored device only by ``user:device@server``; for any other JID
  ``Neonize()`` hands nil to ``whatsmeow.NewClient`` and the process aborts.
  The client is created with the device JID the daemon remembered, every
  connect first checks the store still holds it (``_devicestore``: whatsmeow
  deletes devices by itself on logout), and the device is learned from
  ``PairSuccess`` and from the ``Device`` message Go sends before each
  connection's events; each change is reported to the daemon as a ``device``
  frame so it persists with the session.
* **Inbound messages are journaled in the callback.** whatsmeow has already
  sent the delivery receipt when the callback runs (neonize's Go handler
  receipts once it has queued the event): WhatsApp will never send it again.
  So the callback appends each ``MessageEv`` (its protobuf bytes) to the
  session's inbound journal (:mod:`actors.drivers._journal`; one ``write()``,
  no fsync, microseconds) before queueing it; the converter thread fsyncs the
  journals of each group it drains (one group commit per pass) before the
  group's frames go to the daemon; the daemon's ``ack`` call (after its store
  commit) releases them; each connection first replays what the journal still
  holds (a previous worker died, or a connection ended with messages unstored).
  What remains exposed: the events in whatsmeow's 100-entry Go queue between
  its receipt and this callback, lost if the process dies there. The append
  adds ~23 µs per message to the callback (measured: a 182-byte ``MessageEv``
  serialized and written, on this machine under load), so the callback drains
  that queue far faster than WhatsApp fills it: the queue is normally empty,
  and at worst (a burst while the process is starved of CPU) holds 100 events.
* **Garbage collection must not call Go.** ``NewClient`` registers a finalizer
  that calls ``Stop`` whenever the object is collected - an unserialized map
  write at a random moment. It is detached; clients are stopped explicitly.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import attrs
import neonize.events as neonize_events
from google.protobuf import json_format
from neonize._binder import ProxySettings
from neonize.client import NewClient
from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import JID as JIDProto
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    StickerMessage,
    VideoMessage,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage
from neonize.utils.enum import ChatPresence, ChatPresenceMedia, MediaType, ReceiptType
from neonize.utils.enum import Presence as NeonizePresence
from neonize.utils.jid import build_jid

from .._errors import (
    DriverConnectError,
    DriverStateError,
    MediaNotFoundError,
    NotConnectedError,
    RequestError,
    RequestInterruptedError,
    RequestTimeoutError,
)
from .._events import (
    ENDING_EVENTS,
    Connected,
    Disconnected,
    Event,
    LoggedOut,
    MediaKind,
    OutboundOperation,
    PairingCode,
    Quote,
    PairSuccess,
    Qr,
    TemporaryBan,
)
from .._journal import Journal, journal_path
from ._history import history_events
from ._convert import (
    SUBSCRIBED,
    Refused,
    convert,
    device_jid_str,
    jid_str,
    lid_mappings,
    lost_ending,
)
from ._devicestore import DeviceStoreError, delete_device, device_exists, is_postgres
from ._ffilock import FfiLock
from ._operations import operation_message, reply_message
from ._wire import b64decode, encode_error, encode_event

log = logging.getLogger(__name__)

SETTLE_S: Final = 0.5
"""Longest exclusive hold of a connection start or a stop. The Go map write
happens in the first instructions of ``Neonize()`` (the abort trace points at
its prologue); half a second is orders of magnitude more, and only delays other
starts and stops. ``Stop`` can block far longer (until a dial in progress
ends, measured): it runs on its own thread and the lock is released after
this window even if it has not returned."""

PREVIOUS_CONNECTION_GRACE_S: Final = 2.0
"""How long a new connection waits for the client's previous Go call to return.
A stopped live connection returns within neonize's 0.2 s polling; one that is
still running after this is a dial hanging until whatsmeow's 60 s deadline
(``Stop`` does not cut it short). Then ``connect`` fails at once, retryable,
rather than block and start later a connection its caller may have given up on;
two Go calls under one client id would also share Go's map entry."""

QR_FIRST_TTL_S: Final = 60.0
QR_NEXT_TTL_S: Final = 20.0
"""whatsmeow's QR timeouts: the first code lives 60 s, each following one 20 s."""

QR_TIMEOUT_CODE: Final = 408
"""Code of the ending event when the QR limit is reached: WhatsApp's own code
for a QR session that timed out (the session table maps 408 to ``needs_auth``)."""

CONVERT_GROUP: Final = 512
"""Most raw events the converter takes per pass (one journal fsync per pass): about
five Go queues' worth, so a burst is committed in a few fsyncs while the first
event of a pass waits for at most one group's conversion."""

MAX_LIDS: Final = 100_000
"""LID mappings a client remembers having announced (a few MB); beyond it the memory is reset."""

DEFERRED: Final = object()
"""``call`` result meaning "the reply is sent later, by the converter thread" (``connect``)."""

SENT_MEMORY: Final = 1024
"""Message ids remembered per client to answer a re-send as a duplicate.
neonize 0.5.2 cannot pass our id to WhatsApp (``SendMessage`` takes no
``SendRequestExtra``), so idempotency is kept here, for the worker's lifetime;
1024 covers any retry window of the outbox (3 attempts within minutes)."""

_UPLOAD_TYPES: Final = {
    MediaKind.IMAGE: (MediaType.MediaImage, ImageMessage, "imageMessage"),
    MediaKind.STICKER: (MediaType.MediaImage, StickerMessage, "stickerMessage"),
    MediaKind.VIDEO: (MediaType.MediaVideo, VideoMessage, "videoMessage"),
    MediaKind.AUDIO: (MediaType.MediaAudio, AudioMessage, "audioMessage"),
    MediaKind.DOCUMENT: (MediaType.MediaDocument, DocumentMessage, "documentMessage"),
}


@attrs.define(eq=False)
class _Conn:
    """One connection of a client: from ``connect`` until its Go call returns."""

    number: int
    reply_id: Any  # the connect call's id: answered by the converter, in order with the events
    answered: bool = False
    signal: threading.Event = attrs.field(factory=threading.Event)  # first sign of life: ends the start window
    first_qr: threading.Event = attrs.field(factory=threading.Event)
    qr_count: int = 0
    connected: bool = False
    ended: bool = False
    stop_requested: bool = False
    stop_deferred: bool = False  # stopped while dialing: Go's Stop waits for the dial, so it is sent later
    returned: bool = False
    replay: list[tuple[str, bytes]] = attrs.field(factory=list)  # journaled before it started: emitted first


@attrs.define(eq=False)
class _Slot:
    """One session's client in this worker."""

    session: str
    store: str
    client: NewClient
    qr_limit: int
    proxy: str | None
    device: str | None = None  # the paired device's full JID; None: the next connect pairs (QR)
    current: _Conn | None = None
    thread: threading.Thread | None = None
    connects: int = 0
    sent: OrderedDict[str, dict[str, Any]] = attrs.field(factory=OrderedDict)
    journal: Journal | None = None
    lids: dict[str, str] = attrs.field(factory=dict)  # LID -> phone JID announced


def _jid(text: Any, field: str) -> Any:
    if not isinstance(text, str) or "@" not in text or not text.split("@", 1)[0]:
        raise ValueError(f"{field} must be a JID like '5511999990000@s.whatsapp.net', got {text!r}")
    user, server = text.split("@", 1)
    return build_jid(user.split(":", 1)[0], server)


_DEVICE_JID: Final = re.compile(r"([^@:.\s]+)(?:\.([0-9]+))?:([1-9][0-9]*)@([^@:\s]+)")


def _device_jid(text: Any) -> JIDProto:
    """A device JID ``user[.agent]:device@server`` as neonize's JID message, every field set.

    Go's ``DecodeJidProto`` dereferences each field: an unset one would crash it.
    Raises ``ValueError`` for anything else (a bare ``user@server`` finds no device).
    """
    match = _DEVICE_JID.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"jid must be a device JID like '5511999990000:12@s.whatsapp.net', got {text!r}")
    user, agent, device, server = match.groups()
    return JIDProto(User=user, RawAgent=int(agent or 0), Device=int(device), Integrator=0, Server=server, IsEmpty=False)


def _media_path(text: str) -> str:
    """A media file named by the daemon (see ``_wire``, *Media*): an absolute path, or ``ValueError``."""
    if not os.path.isabs(text):
        raise ValueError(f"file must be an absolute path in the pool's spool directory, got {text!r}")
    return text


def _read_media(text: str) -> bytes:
    """The bytes of the daemon's media file (neonize's ``Upload`` takes bytes, not a file)."""
    try:
        with open(_media_path(text), "rb") as file:
            return file.read()
    except OSError as exc:
        raise ValueError(f"file: cannot read {text!r}: {exc.strerror}") from exc


def _text(args: dict[str, Any], field: str, *, allow_empty: bool = False) -> str:
    value = args.get(field)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{field} must be a {'' if allow_empty else 'non-empty '}string, got {value!r}")
    return value


def _ffi_error(exc: Exception) -> Exception:
    """A neonize error as the driver error it means.

    whatsmeow's own words decide: "websocket not connected" — nothing was sent; "timed out
    waiting for message send response" / "info query timed out" — sent, no answer; "websocket
    disconnected before ..." — sent, then the connection went. The last two leave a send's
    outcome unknown (the outbox must not repeat it), anything else is WhatsApp saying no.
    """
    message = str(exc)
    lowered = message.lower()
    if "disconnected before" in lowered:
        return RequestInterruptedError(message)
    if "not connected" in lowered:
        return NotConnectedError(message)
    if "timed out" in lowered:
        return RequestTimeoutError(message)
    return RequestError(message)


def _fill_required(message: Any) -> Any:
    """Set every unset required (proto2) field to its default, recursively, like Go's encoder does."""
    for field in message.DESCRIPTOR.fields:
        if field.is_repeated:
            continue
        if field.message_type is not None:
            if field.is_required or message.HasField(field.name):
                _fill_required(getattr(message, field.name))
        elif field.is_required and not message.HasField(field.name):
            setattr(message, field.name, field.default_value)
    return message


@attrs.define(eq=False)
class ClientHost:
    """Every neonize client of this worker. ``emit`` sends a frame to the daemon (never blocks long)."""

    emit: Callable[[dict[str, Any]], None]
    submit: Callable[..., Any]  # runs a function on the worker's call pool (for stops decided by events)
    _lock: FfiLock = attrs.field(factory=FfiLock, init=False)
    _slots: dict[str, _Slot] = attrs.field(factory=dict, init=False)
    # Removed clients whose Go call has not returned: Go still holds their ctypes
    # callbacks, which must outlive it (a collected thunk called from Go crashes).
    _removed: list[_Slot] = attrs.field(factory=list, init=False)
    _raw: queue.SimpleQueue = attrs.field(factory=queue.SimpleQueue, init=False)
    # One journal per session for the worker's life, shared by the session's successive clients
    # here (a removed client's Go call may still deliver a late event into it).
    _journals: dict[str, Journal] = attrs.field(factory=dict, init=False)
    connects: int = attrs.field(default=0, init=False)

    def start(self) -> None:
        """Start the converter thread (a daemon thread: the worker ends with ``os._exit``)."""
        threading.Thread(target=self._convert_forever, name="converter", daemon=True).start()

    # -- calls from the daemon ------------------------------------------------

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """Run one daemon call; returns its result (or ``DEFERRED``), or raises a driver error / ``ValueError``."""
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise ValueError(f"op: unknown operation {op!r}")
        if op in ("create", "stats"):
            return handler(args)
        session = _text(args, "session")
        slot = self._slots.get(session)
        if slot is None:
            raise DriverStateError(f"session {session!r} has no client in this worker")
        return handler(slot, args)

    def _op_create(self, args: dict[str, Any]) -> dict[str, Any]:
        session = _text(args, "session")
        store = _text(args, "store")
        qr_limit = args.get("qr_limit")
        if not isinstance(qr_limit, int) or qr_limit < 1:
            raise ValueError(f"qr_limit must be an integer >= 1, got {qr_limit!r}")
        if session in self._slots:
            raise DriverStateError(f"session {session!r} already has a client in this worker")
        for old in self._removed:  # see PREVIOUS_CONNECTION_GRACE_S
            if old.session == session and old.thread is not None:
                old.thread.join(PREVIOUS_CONNECTION_GRACE_S)
                if old.thread.is_alive():
                    raise DriverConnectError(f"session {session!r}: its previous client is still closing (its dial has not ended)")
        device = args.get("jid") or None
        if device is not None:
            _device_jid(device)  # refuse a malformed JID before anything is created
        journal = self._journal(session, args.get("journal"))  # before the client: nothing to undo if it fails
        # The JID is set after construction: given to NewClient it would replace
        # the uuid (Go's key for the client) with the phone number.
        client = NewClient(store, uuid=session)
        client._stop_finalizer.detach()  # see module docstring: GC must not call Stop
        slot = _Slot(session=session, store=store, client=client, qr_limit=qr_limit, proxy=args.get("proxy"),
                     journal=journal)
        self._use_device(slot, device)
        for event_class in SUBSCRIBED:
            client.event(event_class)(partial(self._on_event, slot))
        client.event.qr(partial(self._on_qr, slot))
        self._slots[session] = slot
        return {}

    def _journal(self, session: str, directory: Any) -> Journal | None:
        """The session's inbound journal under ``directory`` (``None``: not journaled)."""
        if directory is None:
            return None
        if not isinstance(directory, str) or not directory:
            raise ValueError(f"journal must be a directory path, got {directory!r}")
        journal = self._journals.get(session)
        if journal is None:
            journal = self._journals[session] = Journal.open(journal_path(directory, session))
        return journal

    def _op_ack(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        """The daemon stored these messages: release them from the journal."""
        ids = args.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"ids must be a list of message ids, got {ids!r}")
        released = slot.journal.release(ids) if slot.journal is not None else 0
        return {"released": released}

    def _op_stats(self, _args: dict[str, Any]) -> dict[str, Any]:
        """Clients hosted, connects made, open descriptors (neonize leaks one per connect), calls inside Go."""
        return {
            "clients": len(self._slots),
            "connects": self.connects,
            "fds": len(os.listdir("/proc/self/fd")),
            "in_go": self._lock.readers,
        }

    def _op_connect(self, slot: _Slot, args: dict[str, Any]) -> Any:
        """Start a connection; the reply comes from the converter thread (``DEFERRED``).

        It is sent when WhatsApp first answers (first event or QR: ``{"conn": n}``)
        or when the connection fails first (a ``DriverConnectError``), through the
        same queue as the events, so the daemon always gets the reply before the
        connection's events and a full event channel can never hold it back.
        """
        previous = slot.current
        if previous is not None and not previous.ended:
            raise DriverStateError(f"session {slot.session!r}: connect() while connection {previous.number} is open")
        if slot.thread is not None:
            slot.thread.join(PREVIOUS_CONNECTION_GRACE_S)
            if slot.thread.is_alive():
                raise DriverConnectError(f"session {slot.session!r}: the previous connection is still closing (its dial has not ended)")
        self._check_device(slot)
        slot.connects += 1
        self.connects += 1
        conn = _Conn(number=slot.connects, reply_id=args.get("id"),
                     replay=slot.journal.pending() if slot.journal is not None else [])
        with self._lock.exclusive():
            slot.current = conn
            slot.thread = threading.Thread(
                target=self._run_connection, args=(slot, conn), name=f"connect:{slot.session}:{conn.number}", daemon=True
            )
            slot.thread.start()
            conn.signal.wait(SETTLE_S)
        return DEFERRED

    def _op_stop(self, slot: _Slot, _args: dict[str, Any]) -> dict[str, Any]:
        conn = slot.current
        if conn is None or conn.returned or conn.stop_requested:
            return {}
        conn.stop_requested = True
        self._raw.put((slot, conn, "local_end", Disconnected(code=None, reason="stopped by zapvisor", local=True)))
        if not conn.answered:
            # Still dialing: Go's Stop would block until the dial ends (measured:
            # it does not interrupt it) while holding the lock every other client
            # needs. The dial ends by itself; if WhatsApp answers first, the
            # converter sends the stop then.
            conn.stop_deferred = True
            return {}
        self._stop_client(slot)
        return {}

    def _op_wipe(self, slot: _Slot, _args: dict[str, Any]) -> dict[str, Any]:
        """Delete the session's device from the store without a connection (neonize's Logout needs one).

        For a store shared by several sessions (PostgreSQL), where deleting files
        is not an option. Refused while a connection is open: log out through it.
        """
        conn = slot.current
        if conn is not None and not conn.returned:
            raise DriverStateError(f"session {slot.session!r}: wipe while a connection is open; log out instead")
        if slot.device is not None:
            try:
                delete_device(slot.store, slot.device)
            except DeviceStoreError as exc:
                raise RequestError(str(exc)) from exc
            self._set_device(slot, None)
        return {}

    def _op_remove(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        self._op_stop(slot, args)
        del self._slots[slot.session]
        self._removed = [old for old in self._removed if old.thread is not None and old.thread.is_alive()]
        if slot.thread is not None and slot.thread.is_alive():
            self._removed.append(slot)
        return {}

    def _op_logout(self, slot: _Slot, _args: dict[str, Any]) -> dict[str, Any]:
        """Unlink the device (whatsmeow's Logout also deletes it from the store) and end the connection.

        While QR codes are showing there is no device yet: the connection just
        ends, with the same ``LoggedOut(local=True)``.
        """
        conn = slot.current
        if conn is None or conn.ended or not conn.answered:
            raise NotConnectedError(f"session {slot.session!r} has no open connection")
        if conn.connected:
            with self._lock.shared():
                try:
                    slot.client.logout()
                except NeonizeError as exc:
                    raise _ffi_error(exc) from exc
        conn.stop_requested = True
        self._raw.put((slot, conn, "local_end", LoggedOut(reason="logged out by zapvisor", local=True)))
        self._stop_client(slot)
        return {}

    def _op_pair_phone(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        phone = _text(args, "phone")
        if not phone.isdigit() or not 8 <= len(phone) <= 15:
            raise ValueError(f"phone must be 8-15 digits, country code first, got {phone!r}")
        conn = slot.current
        if conn is None or conn.ended or not conn.first_qr.is_set():
            raise DriverStateError("pair_phone is only valid once the connection has shown its first QR code")
        with self._lock.shared():
            try:
                code = slot.client.PairPhone(phone, True)
            except NeonizeError as exc:
                raise _ffi_error(exc) from exc
        self._raw.put((slot, conn, "pairing", PairingCode(code=code, expires_at=None)))
        return {"code": code}

    def _op_send_text(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        to, text, message_id = _jid(args.get("to"), "to"), _text(args, "text"), _text(args, "message_id")
        quote = args.get("quote")
        if quote is None:
            return self._send(slot, message_id, lambda: slot.client.send_message(to, text))
        if not isinstance(quote, dict):
            raise ValueError(f"quote must be an object, got {quote!r}")
        quoted = Quote(**quote)

        def send() -> Any:
            me = slot.client.me
            if me is None:
                raise NotConnectedError("the client has no own JID yet (not logged in)")
            return slot.client.send_message(to, reply_message(text, quoted, to, me.JID))

        return self._send(slot, message_id, send)

    def _op_send_operation(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        """A reaction, edit or delete for everyone (see ``_operations``)."""
        chat, message_id = _jid(args.get("to"), "to"), _text(args, "message_id")
        operation = OutboundOperation(kind=_text(args, "kind"), target_id=_text(args, "target_id"),
                                      target_from_me=bool(args.get("target_from_me", True)),
                                      text=_text(args, "text", allow_empty=True))

        def send() -> Any:
            me = slot.client.me
            if me is None:
                raise NotConnectedError("the client has no own JID yet (not logged in)")
            return slot.client.send_message(chat, operation_message(operation, chat, me.JID))

        return self._send(slot, message_id, send)

    def _op_send_media(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        to, message_id = _jid(args.get("to"), "to"), _text(args, "message_id")
        kind = MediaKind(_text(args, "kind"))
        data = _read_media(_text(args, "file"))
        mimetype = _text(args, "mimetype")
        caption = _text(args, "caption", allow_empty=True) if args.get("caption") is not None else ""
        file_name = args.get("file_name")
        media_type, message_class, field = _UPLOAD_TYPES[kind]

        def send() -> Any:
            upload = slot.client.upload(data, media_type)
            part = message_class(
                URL=upload.url,
                directPath=upload.DirectPath,
                mediaKey=upload.MediaKey,
                fileEncSHA256=upload.FileEncSHA256,
                fileSHA256=upload.FileSHA256,
                fileLength=upload.FileLength,
                mimetype=mimetype,
            )
            if kind in (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.DOCUMENT) and caption:
                part.caption = caption
            if kind is MediaKind.DOCUMENT and file_name:
                part.fileName = file_name
            return slot.client.send_message(to, E2EMessage(**{field: part}))

        return self._send(slot, message_id, send)

    def _send(self, slot: _Slot, message_id: str, send: Callable[[], Any]) -> dict[str, Any]:
        known = slot.sent.get(message_id)
        if known is not None:
            return {**known, "duplicate": True}
        self._live(slot)
        with self._lock.shared():
            try:
                response = send()
            except NeonizeError as exc:
                raise _ffi_error(exc) from exc
        result = {"message_id": response.ID, "timestamp": float(response.Timestamp), "duplicate": False}
        slot.sent[message_id] = result
        while len(slot.sent) > SENT_MEMORY:
            slot.sent.popitem(last=False)
        return result

    def _op_download_media(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        try:
            message = E2EMessage.FromString(b64decode(_text(args, "ref")))
        except Exception as exc:  # protobuf's DecodeError and base64's binascii.Error
            raise ValueError(f"ref is not a neonize media reference: {exc}") from exc
        path = _media_path(_text(args, "file"))
        self._live(slot)
        with self._lock.shared():
            try:
                slot.client.download_any(message, path)  # neonize writes whatsmeow's bytes to the file
            except NeonizeError as exc:
                if any(status in str(exc) for status in ("404", "410")):
                    raise MediaNotFoundError(str(exc)) from exc
                raise _ffi_error(exc) from exc
        return {"size": os.path.getsize(path)}

    def _op_mark_read(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        chat = _jid(args.get("chat"), "chat")
        sender = _jid(args["sender"], "sender") if args.get("sender") else chat
        ids = args.get("message_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"message_ids must be a non-empty list of ids, got {ids!r}")
        self._live(slot)
        with self._lock.shared():
            try:
                slot.client.mark_read(*ids, chat=chat, sender=sender, receipt=ReceiptType.READ)
            except NeonizeError as exc:
                raise _ffi_error(exc) from exc
        return {}

    def _op_reject_call(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        """Decline a call; ``call_from`` as the offer named it (whatsmeow's ``RejectCall``)."""
        caller, call_id = _jid(args.get("call_from"), "call_from"), _text(args, "call_id")
        return self._go(slot, lambda: slot.client.reject_call(caller, call_id))

    def _op_presence(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        presence = NeonizePresence.AVAILABLE if args.get("available") is True else NeonizePresence.UNAVAILABLE
        return self._go(slot, lambda: slot.client.send_presence(presence))

    def _op_chat_state(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        chat = _jid(args.get("chat"), "chat")
        state = ChatPresence.CHAT_PRESENCE_COMPOSING if args.get("composing") is True else ChatPresence.CHAT_PRESENCE_PAUSED
        return self._go(slot, lambda: slot.client.send_chat_presence(chat, state, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT))

    def _op_subscribe_presence(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        jid = _jid(args.get("jid"), "jid")
        return self._go(slot, lambda: slot.client.subscribe_presence(jid))

    def _go(self, slot: _Slot, call: Callable[[], Any]) -> dict[str, Any]:
        """Run a one-shot Go call on the live connection; neonize's error becomes a driver error."""
        self._live(slot)
        with self._lock.shared():
            try:
                call()
            except NeonizeError as exc:
                raise _ffi_error(exc) from exc
        return {}

    def _op_probe(self, slot: _Slot, _args: dict[str, Any]) -> dict[str, Any]:
        """A real round trip: whatsmeow's GetBlocklist always sends an IQ and waits for its answer."""
        self._live(slot)
        with self._lock.shared():
            try:
                slot.client.get_blocklist()
            except NeonizeError as exc:
                raise _ffi_error(exc) from exc
        return {}

    def _op_inject(self, slot: _Slot, args: dict[str, Any]) -> dict[str, Any]:
        """Test support: feed an event built offline through the client's real callback path.

        ``connect()`` binds the ctypes thunks Go calls (``client._connect_refs``:
        QR callback, login callback, event callback, log callback); calling them
        with a C buffer is exactly what Go does: ``Event.execute`` parses the
        bytes with ``FromString`` and dispatches to the registered callback.
        ``event`` names a class of ``neonize.events`` (``"TemporaryBanEv"``) and
        ``fields`` its JSON form (unset required fields get their defaults, as
        Go always sets them); or ``qr`` carries a QR code string.
        """
        refs = getattr(slot.client, "_connect_refs", None)
        if refs is None:
            raise DriverStateError("inject needs a connect() first: connect binds the callbacks Go calls")
        qr_callback, _login_callback, event_callback = refs[0], refs[1], refs[2]
        if args.get("qr") is not None:
            code = ctypes.create_string_buffer(_text(args, "qr").encode())
            qr_callback(slot.client.uuid, ctypes.addressof(code))
            return {}
        event_class = getattr(neonize_events, _text(args, "event"), None)
        if event_class not in neonize_events.EVENT_TO_INT:
            raise ValueError(f"event must name a neonize event class, got {args.get('event')!r}")
        message = _fill_required(json_format.ParseDict(args.get("fields") or {}, event_class()))
        data = message.SerializeToString()
        buffer = ctypes.create_string_buffer(data, len(data))
        event_callback(slot.client.uuid, ctypes.addressof(buffer), len(data), neonize_events.EVENT_TO_INT[event_class])
        return {}

    # -- the device --------------------------------------------------------------

    def _use_device(self, slot: _Slot, device: str | None) -> None:
        """Connect as ``device`` from now on; ``None``: pair a new device (QR) on a shared store,
        resume the file's only device (or pair one) on a per-session SQLite file."""
        slot.device = device
        slot.client.jid = _device_jid(device) if device is not None else None
        slot.client.new_device = device is None and is_postgres(slot.store)

    def _set_device(self, slot: _Slot, device: str | None) -> None:
        """Change the device and tell the daemon (a ``device`` frame), in order with the events."""
        if device == slot.device:
            return
        self._use_device(slot, device)
        self._announce_device(slot)

    def _announce_device(self, slot: _Slot) -> None:
        self.emit({"kind": "device", "session": slot.session, "jid": slot.device})

    def _check_device(self, slot: _Slot) -> None:
        """Before a connect: a remembered device the store no longer holds is forgotten (see module docstring).

        Raises ``DriverConnectError`` (retryable) when the store cannot be read:
        connecting blind could abort the worker.
        """
        if slot.device is None:
            return
        try:
            exists = device_exists(slot.store, slot.device)
        except DeviceStoreError as exc:
            raise DriverConnectError(f"cannot check the device store: {exc}") from exc
        if not exists:
            log.warning("session %s: device %s is gone from the store; pairing anew", slot.session, slot.device)
            self._set_device(slot, None)

    def _learn_device(self, slot: _Slot, payload: Any) -> None:
        """The device JID a ``PairSuccess`` names, or the one Go's ``Device`` message gave before ``Connected``."""
        if isinstance(payload, neonize_events.PairStatusEv):
            device = device_jid_str(payload.ID)
        else:
            me = slot.client.me
            device = device_jid_str(me.JID) if me is not None and me.HasField("JID") else None
        if device is not None:  # announced even if unchanged: the daemon may have failed to record it
            self._use_device(slot, device)
            self._announce_device(slot)

    def _live(self, slot: _Slot) -> _Conn:
        conn = slot.current
        if conn is None or conn.ended or not conn.connected:
            raise NotConnectedError(f"session {slot.session!r} has no live connection")
        return conn

    # -- Go-side threads ---------------------------------------------------------

    def _run_connection(self, slot: _Slot, conn: _Conn) -> None:
        error: str | None = None
        try:
            slot.client.connect(ProxySettings(proxy_address=slot.proxy) if slot.proxy else None)
        except NeonizeError as exc:
            error = str(exc)
        except Exception as exc:  # the thread's boundary: a failed connection, not a dead worker
            log.exception("connect of %s crashed", slot.session)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.signal.set()
            self._raw.put((slot, conn, "returned", error))

    def _on_event(self, slot: _Slot, _client: NewClient, event: Any) -> None:
        if slot.journal is not None and isinstance(event, neonize_events.MessageEv):
            try:  # before anything else: whatsmeow has receipted it (see the module docstring)
                slot.journal.append([(event.Info.ID, event.SerializeToString())])
            except (OSError, ValueError):  # a full disk must not kill Go's thread; the event still flows
                log.exception("session %s: message %s not journaled", slot.session, event.Info.ID)
        conn = slot.current
        if conn is not None:
            conn.signal.set()
            self._raw.put((slot, conn, "event", event))

    def _on_qr(self, slot: _Slot, _client: NewClient, data: bytes) -> None:
        conn = slot.current
        if conn is not None:
            conn.signal.set()
            self._raw.put((slot, conn, "qr", data))

    # -- the converter thread ------------------------------------------------

    def _convert_forever(self) -> None:
        """Convert raw events in groups: the group's journals are fsynced once, then its frames go out."""
        while True:
            group = [self._raw.get()]
            while len(group) < CONVERT_GROUP:
                try:
                    group.append(self._raw.get_nowait())
                except queue.Empty:
                    break
            for journal in {slot.journal for slot, _conn, kind, _payload in group if kind == "event" and slot.journal}:
                try:
                    journal.sync()
                except OSError:  # the entries are written (they survive this process); only power loss threatens them
                    log.exception("journal %s: fsync failed", journal.path)
            for slot, conn, kind, payload in group:
                try:
                    self._handle(slot, conn, kind, payload)
                except Exception:  # one bad event must not stop every session's events
                    log.exception("dropping %s of session %s", kind, slot.session)

    def _handle(self, slot: _Slot, conn: _Conn, kind: str, payload: Any) -> None:
        if kind == "returned":
            conn.returned = True
            lost = lost_ending(payload, now=time.time())  # an event neonize could not encode ended the call
            if not conn.answered and not isinstance(lost, TemporaryBan):
                code = lost.code if isinstance(lost, Refused) else None
                self._refuse(conn, DriverConnectError(payload or "the connection ended before WhatsApp answered", code=code))
            elif not conn.ended:
                if not conn.answered:  # a ban announced at login: answered by the ban itself
                    conn.answered = True
                    self.emit({"kind": "reply", "id": conn.reply_id, "result": {"conn": conn.number}})
                if isinstance(lost, Refused):
                    lost = Disconnected(code=lost.code, reason=lost.reason)
                self._end(slot, conn, lost or Disconnected(code=None, reason=payload or "connection closed"))
            self.emit({"kind": "closed", "session": slot.session, "conn": conn.number})
            return
        if conn.ended:
            if conn.stop_deferred:  # WhatsApp answered a connection stopped while dialing: stop it now
                conn.stop_deferred = False
                self.submit(self._stop_client, slot)
            return
        event = self._normalize(slot, conn, kind, payload)
        if event is None:
            return
        if not conn.answered:
            conn.answered = True
            self.emit({"kind": "reply", "id": conn.reply_id, "result": {"conn": conn.number}})
            self._replay(slot, conn)
        if isinstance(event, ENDING_EVENTS):
            self._end(slot, conn, event)
            return
        if isinstance(event, Connected):
            conn.connected = True
        if isinstance(event, (Connected, PairSuccess)):
            self._learn_device(slot, payload)
        if kind == "event":
            self._identities(slot, conn, payload)
        self._emit_event(slot, conn, event)

    def _identities(self, slot: _Slot, conn: _Conn, payload: Any) -> None:
        """Announce the LID mappings ``payload`` carries (before it), each once per client.

        neonize's own lookup (``get_pn_from_lid``) is not called: in 0.5.2 it aborted this
        process (Go nil pointer in ``main.GetPNFromLID``) on a client whose connection was
        not established with WhatsApp, and no safe state could be told apart from here.
        """
        if len(slot.lids) > MAX_LIDS:
            slot.lids.clear()  # forgetting only costs an announcement again
        for mapping in lid_mappings(payload):
            if slot.lids.get(mapping.lid) != mapping.pn:
                slot.lids[mapping.lid] = mapping.pn
                self._emit_event(slot, conn, mapping)

    def _normalize(self, slot: _Slot, conn: _Conn, kind: str, payload: Any) -> Event | None:
        match kind:
            case "local_end":
                if not conn.answered:
                    self._refuse(conn, DriverConnectError("stopped before WhatsApp answered"))
                    return None
                return payload
            case "pairing":
                return payload
            case "qr":
                conn.qr_count += 1
                if conn.qr_count > slot.qr_limit:
                    self._request_stop(slot, conn)
                    return Disconnected(
                        code=QR_TIMEOUT_CODE,
                        reason=f"QR limit reached: {slot.qr_limit} codes shown, none scanned",
                    )
                conn.first_qr.set()
                ttl = QR_FIRST_TTL_S if conn.qr_count == 1 else QR_NEXT_TTL_S
                return Qr(code=payload.decode(), index=conn.qr_count, expires_at=time.time() + ttl)
        if isinstance(payload, neonize_events.HistorySyncEv):  # many events: emitted here, in order
            for event in history_events(payload):
                self._emit_event(slot, conn, event)
            return None
        me = jid_str(slot.client.me.JID) if slot.client.me is not None else None
        event = convert(payload, me=me or None, now=time.time(), decrypt_vote=partial(self._decrypt_vote, slot))
        if isinstance(event, Refused):
            if not conn.answered:
                self._refuse(conn, DriverConnectError(f"WhatsApp refused the connection: {event.reason}", code=event.code))
                self._request_stop(slot, conn)
                return None
            return Disconnected(code=event.code, reason=event.reason)
        return event

    def _decrypt_vote(self, slot: _Slot, event: Any) -> list[bytes] | None:
        """A poll vote's selected option hashes; ``None`` when whatsmeow cannot decrypt it (the
        poll was created before this device was linked, so its secret is not in the store).

        Only for a paired client: an unpaired whatsmeow device has no message-secret store, and
        neonize 0.5.2's ``DecryptPollVote`` then dereferences it - a Go panic that kills the
        worker and every session on it (found by ``tests/drivers/neonize/test_kinds.py``)."""
        me = slot.client.me
        if me is None or not me.JID.User:
            return None
        try:
            with self._lock.shared():
                return list(slot.client.decrypt_poll_vote(event).selectedOptions)
        except NeonizeError as exc:
            log.info("session %s: poll vote %s not decrypted: %s", slot.session, event.Info.ID, exc)
            return None

    def _replay(self, slot: _Slot, conn: _Conn) -> None:
        """Emit what the journal held when the connection started, before the connection's own events."""
        replay, conn.replay = conn.replay, []
        for message_id, payload in replay:
            try:
                raw = neonize_events.MessageEv.FromString(payload)
                event = convert(raw, me=None, now=time.time(), decrypt_vote=partial(self._decrypt_vote, slot))
            except Exception:  # written by this module: only a bug gets here; keep the others flowing
                log.exception("session %s: journaled message %s unreadable", slot.session, message_id)
                continue
            if event is not None:
                self._identities(slot, conn, raw)
                self._emit_event(slot, conn, event)

    def _refuse(self, conn: _Conn, error: DriverConnectError) -> None:
        """Answer the connect call with ``error``; the connection emits no event at all."""
        conn.answered = True
        conn.ended = True
        self.emit({"kind": "reply", "id": conn.reply_id, "error": encode_error(error)})

    def _end(self, slot: _Slot, conn: _Conn, event: Event) -> None:
        """Emit the connection's one ending event and make its Go call return."""
        conn.ended = True
        conn.connected = False
        if isinstance(event, LoggedOut):
            self._set_device(slot, None)  # whatsmeow deleted it (or never had one): resuming it would abort
        self._emit_event(slot, conn, event)
        self._request_stop(slot, conn)

    def _request_stop(self, slot: _Slot, conn: _Conn) -> None:
        if conn.returned or (conn.stop_requested and not conn.stop_deferred):
            return
        conn.stop_requested = True
        conn.stop_deferred = False
        self.submit(self._stop_client, slot)

    def _stop_client(self, slot: _Slot) -> None:
        """Call Go's ``Stop`` for the client, holding the lock exclusively for at most ``SETTLE_S``."""
        returned = threading.Event()

        def stop() -> None:
            try:
                slot.client.stop()
            finally:
                returned.set()

        with self._lock.exclusive():
            threading.Thread(target=stop, name=f"stop:{slot.session}", daemon=True).start()
            returned.wait(SETTLE_S)

    def _emit_event(self, slot: _Slot, conn: _Conn, event: Event) -> None:
        self.emit({"kind": "event", "session": slot.session, "conn": conn.number, "event": encode_event(event)})
