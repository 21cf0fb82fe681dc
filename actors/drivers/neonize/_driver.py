"""``NeonizeDriver``: the :class:`~actors.drivers.Driver` of real WhatsApp, over the worker pool.

One driver per session. Its client lives in a worker process chosen by the
:class:`~actors.drivers.neonize.WorkerPool`; the driver only sends calls and
turns the worker's frames back into normalized events. It follows the
protocol's rules (``actors/drivers/_protocol.py``), with these neonize facts:

* ``connect()`` returns when WhatsApp first answers: the first QR code of an
  unpaired account, ``Connected`` of a paired one, or an ending event (a ban
  announced at login arrives as ``TemporaryBan``, with its expiry). A dial that
  fails (no network) or a refusal (``ConnectFailure``) raises
  ``DriverConnectError`` with WhatsApp's message and code.
* Before each ``connect()`` the session moves to another worker if its worker
  is draining (recycling) - the client is recreated there from its store.
* Worker death: :meth:`run` raises :class:`WorkerDied`
  (``restart_immediately``), and so do the calls in flight; the session
  restarts at once and its new driver lands on a live worker.
* ``ack()`` releases stored messages from the session's inbound journal in the
  worker. whatsmeow has receipted every message to WhatsApp before our code saw
  it, so the worker journals each one in neonize's callback before forwarding it
  (``journal_dir``; see ``_host``), and each connection first replays what the
  journal still holds. A message is therefore lost only if its worker dies
  while it sits in whatsmeow's Go queue, between the receipt and the callback.
  A failed ack (the worker died) loses nothing: the entry is replayed.
* ``SendResult.message_id`` is WhatsApp's id for the message (neonize's
  SendResponse ID; neonize 0.5.2 takes no id of ours). The request key is
  remembered within the worker's life only (``_host.SENT_MEMORY``); beyond it,
  a send whose answer was lost (``WorkerDied``, a timeout) is left to the
  outbox, which marks it ambiguous instead of sending it again.
* ``probe()`` is a real IQ round trip (the blocklist query).
* **The device.** whatsmeow resumes a paired account only by its full device
  JID (``user:device@server``); anything else aborts the worker. The driver
  loads the JID from its :class:`DeviceBook` before placing the client, and
  records every change the worker reports (paired, resumed, logged out,
  wiped) before the event that revealed it goes on. With the book in the
  shared store and the device store in PostgreSQL, a session restarted on
  another node resumes the same device: no new QR code.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

import attrs
import trio


from .._errors import DriverConnectError, DriverError, DriverStateError, NotConnectedError, ProbeTimeoutError
from .._events import ENDING_EVENTS, Event, MediaRef, OutboundMedia, OutboundOperation, Quote, SendResult
from ._devicestore import is_postgres
from ._errors import WorkerDied
from ._pool import Placement, WorkerPool
from ._wire import decode_event

log = logging.getLogger(__name__)

_UNKNOWN: Final = object()
"""What the device book holds before it was read (differs from every JID and from None)."""

EVENTS_CAPACITY: Final = 1000
"""Events buffered for the session. An account coming back online gets its
offline queue in a burst (whatsmeow hands over up to hundreds of messages);
beyond this the worker's pipe waits for the session - backpressure, not loss."""

CONNECT_TIMEOUT_S: Final = 30.0
"""Default bound on WhatsApp's first answer (seed: stuck in ``connecting`` for 30 s
means restart). whatsmeow's own dial deadline is 60 s, and ``Stop`` does not cut
a hung dial short, so the driver gives up first and says so."""

_SQLITE_FILES: Final = ("", "-wal", "-shm", "-journal")
"""A SQLite store's database and the side files SQLite may keep next to it."""

STOP_GRACE_S: Final = 5.0
"""Bound of the shielded ``stop`` sent when a ``connect()`` is abandoned."""

DEVICE_RECORD_TIMEOUT_S: Final = 10.0
"""Bound on recording a device change: it holds the worker's pipe (every session of
the worker waits), so a slow store is given this long, then the change is logged
and the session goes on (the next ``Connected`` reports the device again)."""


class DeviceBook(Protocol):
    """Where a session's device JID is kept between runs (the node keeps it in the sessions table)."""

    async def device_jid(self, session_id: str) -> str | None:
        """The full JID the session's device paired as, or ``None`` (never paired, or gone)."""

    async def set_device_jid(self, session_id: str, jid: str | None) -> None:
        """Remember ``jid`` (``None``: forget it). Raises on a store failure."""


def neonize_store(store: str) -> str:
    """The store argument neonize needs: a PostgreSQL DSN gets ``sslmode=prefer`` unless it names one.

    The same DSN serves zapvisor's store (asyncpg, like libpq, defaults to
    ``prefer``) and neonize's Go driver, which defaults to ``require`` and then
    fails against a server without TLS ("pq: SSL is not enabled on the server").
    SQLite paths pass through unchanged.
    """
    if not store.startswith(("postgres://", "postgresql://")) or "sslmode=" in store:
        return store
    return store + ("&" if "?" in store else "?") + "sslmode=prefer"


@attrs.define(eq=False)
class NeonizeDriver:
    """A session's link to WhatsApp through a neonize client in a worker process.

    ``store`` is neonize's own credential store: a SQLite file path (one file
    per session, under the data directory) or a PostgreSQL DSN (shared by all
    sessions: the device is found by its JID, else a new device is paired).
    ``jid`` is the device's full JID (``user:device@server``) when known;
    ``devices``, when given, is read before each placement and told of every
    change (see the module docstring). ``proxy`` is an HTTP/SOCKS proxy URL for
    WhatsApp's websocket.
    ``journal_dir`` is where the worker keeps the session's inbound journal
    (``None``: no journal, inbound is at-most-once as whatsmeow makes it).
    """

    session_id: str
    pool: WorkerPool
    store: str
    qr_limit: int = 3
    jid: str | None = None
    proxy: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S
    devices: DeviceBook | None = None
    journal_dir: str | None = attrs.field(default=None, converter=attrs.converters.optional(str))
    _connecting: bool = attrs.field(default=False, init=False)
    _send: trio.MemorySendChannel[Event] = attrs.field(init=False)
    _events: trio.MemoryReceiveChannel[Event] = attrs.field(init=False)
    _placement: Placement | None = attrs.field(default=None, init=False)
    _open_conn: int | None = attrs.field(default=None, init=False)
    _ended_conn: int = attrs.field(default=0, init=False)
    _failure: WorkerDied | None = attrs.field(default=None, init=False)
    _failed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _running: bool = attrs.field(default=False, init=False)
    _recorded: object = attrs.field(default=_UNKNOWN, init=False)  # what ``devices`` holds, as far as we know

    def __attrs_post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("NeonizeDriver.session_id must be a non-empty string")
        if self.qr_limit < 1:
            raise ValueError(f"NeonizeDriver.qr_limit must be >= 1, got {self.qr_limit!r}")
        if not self.connect_timeout > 0:
            raise ValueError(f"NeonizeDriver.connect_timeout must be > 0, got {self.connect_timeout!r}")
        self._send, self._events = trio.open_memory_channel(EVENTS_CAPACITY)

    @property
    def events(self) -> trio.MemoryReceiveChannel[Event]:
        return self._events

    @property
    def worker_pid(self) -> int | None:
        """The pid of the worker hosting this session's client (``None`` before the first connect)."""
        return self._placement.worker.pid if self._placement is not None else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wait for the worker's death (then raise :class:`WorkerDied`) until cancelled.

        On exit the client is removed from its worker (stopping any connection)
        and ``events`` is closed.
        """
        if self._running:
            raise DriverStateError(f"NeonizeDriver({self.session_id!r}).run() is already running")
        self._running = True
        task_status.started()
        try:
            await self._failed.wait()
            assert self._failure is not None
            raise self._failure
        finally:
            if self._placement is not None:
                await self.pool.release(self._placement)
                self._placement = None
            self._send.close()
            self._running = False

    async def connect(self) -> None:
        """Open a connection; see the module docstring for when it returns.

        Raises ``DriverConnectError`` (dial failure, refusal, or no answer within
        ``connect_timeout``), ``DriverStateError`` if a connection is open or
        opening, ``WorkerDied``. Cancellation stops the half-open connection.
        """
        if not self._running:
            raise DriverStateError("connect() before run(): start the driver with nursery.start(driver.run)")
        self._raise_if_failed()
        if self._is_open() or self._connecting:
            raise DriverStateError(f"session {self.session_id!r}: connect() while a connection is open or opening")
        self._connecting = True
        try:
            await self._connect()
        finally:
            self._connecting = False

    async def _connect(self) -> None:
        placement = await self._placement_for_connect()
        self.pool.note_connect(placement)
        answered = False
        try:
            with trio.move_on_after(self.connect_timeout):
                result = await placement.call("connect")
                answered = True
            if not answered:
                raise DriverConnectError(f"no answer from WhatsApp within {self.connect_timeout} s")
        finally:
            if not answered:  # abandoned or failed: make sure no connection is left behind
                with trio.CancelScope(shield=True), trio.move_on_after(STOP_GRACE_S):
                    with contextlib.suppress(DriverError):  # best effort: a dead worker has nothing to stop
                        await placement.call("stop")
        if result["conn"] > self._ended_conn:
            self._open_conn = result["conn"]

    async def send_text(self, to: str, text: str, message_id: str, quote: Quote | None = None) -> SendResult:
        quoted = {} if quote is None else {"quote": attrs.asdict(quote)}
        result = await self._request("send_text", to=to, text=text, message_id=message_id, **quoted)
        return SendResult(**result)

    async def send_media(self, to: str, media: OutboundMedia, message_id: str) -> SendResult:
        """The bytes go to the worker as a file in the pool's spool directory (see ``_wire``, *Media*)."""
        async with self._media_file() as path:
            await path.write_bytes(media.data)
            result = await self._request(
                "send_media",
                to=to,
                message_id=message_id,
                kind=media.kind.value,
                file=str(path),
                mimetype=media.mimetype,
                file_name=media.file_name,
                caption=media.caption,
            )
        return SendResult(**result)

    async def send_operation(self, chat_jid: str, operation: OutboundOperation, request_key: str) -> SendResult:
        result = await self._request(
            "send_operation", to=chat_jid, message_id=request_key, kind=str(operation.kind),
            target_id=operation.target_id, target_from_me=operation.target_from_me, text=operation.text,
        )
        return SendResult(**result)

    async def download_media(self, ref: MediaRef) -> bytes:
        """The worker writes the bytes to a file in the pool's spool directory; they are read from there."""
        async with self._media_file() as path:
            await self._request("download_media", ref=ref.ref, file=str(path))
            return await path.read_bytes()

    @contextlib.asynccontextmanager
    async def _media_file(self) -> AsyncIterator[trio.Path]:
        """A spool file for one transfer, deleted afterwards whatever happened (shielded: never left behind)."""
        self._raise_if_failed()
        if self._placement is None or not self._is_open():
            raise NotConnectedError(f"session {self.session_id!r} has no open connection")
        path = trio.Path(self.pool.media_file())
        try:
            yield path
        finally:
            with trio.CancelScope(shield=True):
                await path.unlink(missing_ok=True)

    async def mark_read(self, chat_jid: str, message_ids: tuple[str, ...], sender_jid: str | None = None) -> None:
        await self._request("mark_read", chat=chat_jid, message_ids=list(message_ids), sender=sender_jid)

    async def set_presence(self, available: bool) -> None:
        await self._request("presence", available=bool(available))

    async def send_chat_state(self, chat_jid: str, composing: bool) -> None:
        await self._request("chat_state", chat=chat_jid, composing=bool(composing))

    async def subscribe_presence(self, jid: str) -> None:
        await self._request("subscribe_presence", jid=jid)

    async def reject_call(self, call_from: str, call_id: str) -> None:
        await self._request("reject_call", call_from=call_from, call_id=call_id)

    async def pair_phone(self, phone_number: str) -> str:
        result = await self._request("pair_phone", phone=phone_number)
        return str(result["code"])

    async def logout(self) -> None:
        """Unlink the device and wipe its credentials; the open connection ends with ``LoggedOut(local=True)``.

        Without an open connection WhatsApp cannot be told: only the stored
        credentials are wiped (a SQLite store's files are deleted; in a
        PostgreSQL store the worker deletes the device's rows) and no event
        follows; the next connect shows a QR code. The JID is forgotten either way.
        """
        self._raise_if_failed()
        if self._placement is not None and self._is_open():
            await self._placement.call("logout")
            return
        if is_postgres(self.store):
            placement = await self._placement_for_connect()
            await placement.call("wipe")  # its device frame forgets the JID
            return
        for suffix in _SQLITE_FILES:
            await trio.Path(self.store + suffix).unlink(missing_ok=True)
        await self._record_device(None)

    async def stop(self) -> None:
        self._raise_if_failed()
        if self._placement is not None:
            await self._placement.call("stop")

    async def probe(self, timeout: float = 10.0) -> float:
        if not timeout > 0 or math.isinf(timeout):
            raise ValueError(f"probe timeout must be a finite number > 0, got {timeout!r}")
        started = trio.current_time()
        with trio.move_on_after(timeout):
            await self._request("probe")
            return trio.current_time() - started
        raise ProbeTimeoutError(f"session {self.session_id!r}: no probe answer within {timeout} s")

    async def ack(self, *message_ids: str) -> None:
        """Release stored messages from the worker's journal (best effort: what stays is replayed)."""
        placement = self._placement
        if placement is None or not message_ids or self.journal_dir is None:
            await trio.lowlevel.checkpoint()
            return
        with contextlib.suppress(DriverError):  # a dead worker: its successor replays, the store dedupes
            await placement.call("ack", ids=list(message_ids))

    async def inject(self, *, event: str | None = None, fields: dict[str, Any] | None = None, qr: str | None = None) -> None:
        """Test support: have the worker feed a neonize event built offline through the real callback path.

        ``event`` names a class of ``neonize.events`` (``"ConnectedEv"``) and
        ``fields`` its protobuf JSON form; or ``qr`` is a QR code string. Needs a
        connect() first (it binds the callbacks). See ``_host.ClientHost._op_inject``.
        """
        self._raise_if_failed()
        if self._placement is None:
            raise DriverStateError("inject() needs a connect() first")
        await self._placement.call("inject", event=event, fields=fields, qr=qr)

    # -- internals ------------------------------------------------------------

    def _is_open(self) -> bool:
        return self._open_conn is not None and self._open_conn > self._ended_conn

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _request(self, op: str, **args: Any) -> Any:
        self._raise_if_failed()
        if self._placement is None or not self._is_open():
            raise NotConnectedError(f"session {self.session_id!r} has no open connection")
        return await self._placement.call(op, **args)

    async def _placement_for_connect(self) -> Placement:
        placement = self._placement
        if placement is not None and placement.worker.draining:
            self._placement = None
            await self.pool.release(placement)
            placement = None
        if placement is None:
            if self.devices is not None:
                self.jid = self._recorded = await self.devices.device_jid(self.session_id)
            create = {"store": neonize_store(self.store), "qr_limit": self.qr_limit, "jid": self.jid, "proxy": self.proxy,
                      "journal": self.journal_dir}
            placement = await self.pool.attach(
                self.session_id, create=create, on_frame=self._on_frame, on_death=self._on_death
            )
            self._placement = placement
            self._open_conn = None
            self._ended_conn = 0
        return placement

    async def _record_device(self, jid: str | None) -> None:
        """Remember the device (see ``DEVICE_RECORD_TIMEOUT_S`` for a failing book)."""
        self.jid = jid
        if self.devices is None or jid == self._recorded:
            return
        with trio.move_on_after(DEVICE_RECORD_TIMEOUT_S) as scope:
            try:
                await self.devices.set_device_jid(self.session_id, jid)
                self._recorded = jid
            except Exception:  # the session goes on; the device is reported again at the next Connected
                log.exception("session %s: could not record device %s", self.session_id, jid)
        if scope.cancelled_caught:
            log.warning("session %s: recording device %s took over %s s", self.session_id, jid, DEVICE_RECORD_TIMEOUT_S)

    async def _on_frame(self, placement: Placement, frame: dict[str, Any]) -> None:
        if placement is not self._placement:
            return  # a released placement
        if frame["kind"] == "device":
            await self._record_device(frame["jid"])
            return
        if frame["kind"] != "event":
            return  # a connection's Go call returning (its ending event came first)
        event = decode_event(frame["event"])
        if isinstance(event, ENDING_EVENTS):
            self._ended_conn = max(self._ended_conn, int(frame["conn"]))
        try:
            await self._send.send(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return  # the driver is shutting down (run() closed its channel): nobody to tell

    def _on_death(self, placement: Placement, error: WorkerDied) -> None:
        if placement is self._placement and self._failure is None:
            self._failure = error
            self._failed.set()
