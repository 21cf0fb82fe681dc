"""The ``Driver`` protocol: what a session actor needs from a WhatsApp connection.

A driver object belongs to **one session** (one WhatsApp account) for the
session's whole life and may open many connections one after the other.

Lifecycle::

    driver = make_driver(session_id)                 # cheap, no I/O
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)              # hosts the driver's tasks
        await driver.connect()                       # one connection
        async for event in driver.events:            # spans every connection
            match event:
                case Message():
                    await store(event)
                    await driver.ack(event.id)       # only after it is stored
                case Disconnected() | LoggedOut() | ...:   # ENDING_EVENTS
                    ...                              # policy; maybe connect() again

Rules every implementation keeps (the tests of each driver check them):

* ``run()`` hosts background tasks (socket readers, keepalive, worker link).
  It calls ``task_status.started()`` at once and returns only when cancelled;
  cancelling it closes any connection and closes ``events``.
* ``connect()`` opens one connection and returns once the server accepted the
  handshake - *not* necessarily logged in: an unpaired account then emits
  :class:`~actors.drivers.Qr` events, a paired one :class:`~actors.drivers.Connected`.
  It raises :class:`~actors.drivers.DriverConnectError` (a ``ConnectionError``)
  when no connection could be made (unreachable, refused, no handshake answer
  within the driver's connect timeout); in that case no event is emitted. A
  server that *answers* the handshake with a verdict (banned, logged out,
  outdated) is not an error: ``connect()`` returns and the connection's ending
  event carries the reason. ``DriverConnectError.code`` is set only by drivers
  whose library reports such a verdict as a failed connect and nothing else.
  Calling it while a connection is open or opening raises
  :class:`~actors.drivers.DriverStateError`.
* Each successful ``connect()`` is followed by exactly one ending event
  (:data:`~actors.drivers.ENDING_EVENTS`), including after ``stop()``
  (``Disconnected(local=True)``) and ``logout()`` (``LoggedOut(local=True)``).
  Events of one connection all precede the events of the next.
* ``events`` is a bounded receive channel: a session that stops reading applies
  backpressure to the driver, which applies it to WhatsApp. It is never
  closed while ``run()`` is running.
* Requests (``send_*``, ``download_media``, ``mark_read``, ``pair_phone``,
  ``logout``, ``probe``) raise :class:`~actors.drivers.NotConnectedError` when
  there is no open connection, and :class:`~actors.drivers.RequestError` when
  WhatsApp answers with an error. They are cancellation-safe: cancelling one
  abandons the wait, never the connection.
* ``probe()`` makes a **real round trip** to the server and returns its
  duration in seconds (trio clock); it raises
  :class:`~actors.drivers.ProbeTimeoutError` if no answer arrives within
  ``timeout``. It never answers from a cached flag.
* Every inbound :class:`~actors.drivers.Message` is appended to the session's
  inbound journal (:mod:`actors.drivers._journal`) before it reaches ``events``:
  WhatsApp (whatsmeow) receipts a message on arrival and never re-delivers it.
  At the start of each connection, what the journal still holds is emitted
  again, before that connection's own events (the store dedupes).
* ``ack(*message_ids)`` tells the driver the session has durably stored those
  inbound messages (several at once travel together: one frame for a batch);
  it releases them from the journal, and a server that defers delivery (the
  simulator's idealised mode) drops them from its queue. Acking an unknown id
  is not an error (it may belong to a previous connection, replayed and acked
  since). It never blocks on the network for long, and a failed ack loses
  nothing: the entry is replayed.
* Sends: WhatsApp, not the caller, names a sent message (neonize's SendMessage
  takes no id and returns one); ``SendResult.message_id`` is **WhatsApp's id**,
  the one its receipts, quotes, edits and reactions refer to. ``request_key``
  is the caller's stable name for the request (the outbox row's own id), never
  sent to WhatsApp: a driver that still remembers a key may answer its repeat
  with the first result (``duplicate=True``; the neonize worker does, within its
  life), but nothing guarantees it. A send whose answer never came is therefore
  *ambiguous*: :class:`~actors.drivers.RequestTimeoutError` and
  :class:`~actors.drivers.RequestInterruptedError` (the connection ended after
  the request went out) say WhatsApp may have it; a plain
  :class:`~actors.drivers.NotConnectedError` or a refusal
  (:class:`~actors.drivers.RequestError`) says it does not. The outbox records
  the ambiguity instead of sending again (see :mod:`actors.outbox`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import trio

from ._events import Event, MediaRef, OutboundMedia, OutboundOperation, Quote, SendResult


@runtime_checkable
class Driver(Protocol):
    """One session's link to WhatsApp (see the module docstring for the rules)."""

    @property
    def events(self) -> trio.abc.ReceiveChannel[Event]:
        """The normalized events of every connection of this driver, in order."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the driver's background tasks until cancelled."""
        ...

    async def connect(self) -> None:
        """Open a connection; raises ``DriverConnectError`` if none could be made."""
        ...

    async def send_text(self, to: str, text: str, request_key: str, quote: Quote | None = None) -> SendResult:
        """Send ``text`` to the chat ``to`` (replying to ``quote``); the result carries WhatsApp's id for it."""
        ...

    async def send_media(self, to: str, media: OutboundMedia, request_key: str) -> SendResult:
        """Send an attachment (caption in ``media.caption``); the result carries WhatsApp's id."""
        ...

    async def send_operation(self, chat_jid: str, operation: OutboundOperation, request_key: str) -> SendResult:
        """React to, edit or delete for everyone a message of ``chat_jid`` (idempotent on WhatsApp's
        side: the same operation again changes nothing)."""
        ...

    async def download_media(self, ref: MediaRef) -> bytes:
        """Fetch the bytes of an inbound attachment; ``MediaNotFoundError`` if gone."""
        ...

    async def mark_read(self, chat_jid: str, message_ids: tuple[str, ...], sender_jid: str | None = None) -> None:
        """Tell WhatsApp the user read these inbound messages (blue ticks for the contact)."""
        ...

    async def reject_call(self, call_from: str, call_id: str) -> None:
        """Decline an incoming call (a :class:`~actors.drivers.CallOffer`), naming the caller as
        the offer did (``call_from``)."""
        ...

    async def set_presence(self, available: bool) -> None:
        """Show this account as available (online) or unavailable to its contacts; WhatsApp
        only sends contacts' presence to an account that is available."""
        ...

    async def send_chat_state(self, chat_jid: str, composing: bool) -> None:
        """Show "typing..." in ``chat_jid`` (``composing``) or stop showing it."""
        ...

    async def subscribe_presence(self, jid: str) -> None:
        """Ask WhatsApp for ``jid``'s availability (:class:`~actors.drivers.Presence` events)."""
        ...

    async def pair_phone(self, phone_number: str) -> str:
        """Ask for a pairing code for ``phone_number`` (digits, country code first).

        Only valid while the connection is showing QR codes (after the first
        ``Qr`` event). Returns the code; a ``PairingCode`` event carries it too.
        """
        ...

    async def logout(self) -> None:
        """Unlink this device from the account and wipe the stored credentials.

        The connection then ends with ``LoggedOut(local=True)``.
        """
        ...

    async def stop(self) -> None:
        """Close the current connection, if any (idempotent).

        The connection ends with ``Disconnected(local=True)``; the driver stays
        usable and ``connect()`` may be called again.
        """
        ...

    async def probe(self, timeout: float = 10.0) -> float:
        """Round-trip to the server; returns seconds taken or raises ``ProbeTimeoutError``."""
        ...

    async def ack(self, *message_ids: str) -> None:
        """Acknowledge inbound messages after they were durably stored."""
        ...


DriverFactory = Callable[[str], Driver]
"""Builds the driver of one session from its session id (configuration is bound in the factory)."""
