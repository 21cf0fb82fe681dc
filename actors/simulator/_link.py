"""One live session connection on the simulator side, and its two pumps.

A :class:`Link` owns the websocket of one account. Frames leave through one
bounded channel drained by :meth:`Link.write_loop`, which a *stall* fault
pauses (so pongs and deliveries stop while the socket stays open).
:meth:`Link.deliver_loop` moves the account's offline queue onto the wire,
never more than ``window`` messages in flight at a time (not yet receipted by
the client's transport; in the idealised delivery mode, not yet acked after its
store); what is in flight when the link dies stays queued and is delivered
again on the next connection.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio
import trio_websocket

from ._state import Account

# Frames buffered towards one client: bounds memory per connection; producers
# (replies, receipts, deliveries) wait when a slow or stalled client lags this far.
OUT_CAPACITY = 256
# Close codes on the wire: WhatsApp reason R travels as websocket close code 4000 + R
# (4000-4999 is the range RFC 6455 leaves to applications).
CLOSE_CODE_BASE = 4000
# How long a graceful close may wait for the client's close handshake.
CLOSE_GRACE = 2.0


#: Built once: ``json.dumps`` with options builds an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode(frame: dict[str, Any]) -> str:
    return _ENCODER.encode(frame)


@attrs.define(eq=False)
class Link:
    """A connected session: its account, socket, outgoing frames and delivery window."""

    account: Account
    ws: trio_websocket.WebSocketConnection
    window: int
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    stalled: bool = False
    # "qr" (showing QR codes), "pairing" (pairing code issued), "connected"
    phase: str = "qr"
    pairing_code: str | None = None
    pairing_deadline: float = float("inf")  # trio time at which the pairing code expires
    nursery: trio.Nursery | None = None  # the connection's nursery, for tasks spawned by requests
    paired: trio.Event = attrs.field(factory=trio.Event)
    ended: bool = False
    handshaking: bool = True  # counted in Stats.connecting until the welcome is sent
    ending: dict[str, Any] | None = None  # the close frame to send, when ended with a reason
    inflight: set[str] = attrs.field(factory=set)
    pending: deque[str] = attrs.field(factory=deque)
    backlog: int = 0  # queued items at connect time; offline_sync_done follows them
    delivered: int = 0
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _unstall: trio.Event = attrs.field(factory=trio.Event)
    _out_send: trio.MemorySendChannel[str] = attrs.field(init=False)
    _out_recv: trio.MemoryReceiveChannel[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._out_send, self._out_recv = trio.open_memory_channel(OUT_CAPACITY)

    def poke(self) -> None:
        """Wake the delivery pump (queue grew, window freed, stall lifted)."""
        self._wake.set()

    def set_stalled(self, stalled: bool) -> None:
        self.stalled = stalled
        if not stalled:
            self._unstall.set()
            self._unstall = trio.Event()
            self.poke()

    async def send(self, frame: dict[str, Any]) -> bool:
        """Queue a frame for the client (waits while the client lags ``OUT_CAPACITY`` frames).

        Returns ``False`` when the link ended first and the frame was not queued.
        """
        if self.ended:
            return False
        try:
            await self._out_send.send(encode(frame))
        except trio.ClosedResourceError:
            return False
        return True

    async def write_loop(self) -> None:
        """Drain outgoing frames onto the socket; paused while stalled.

        Returns when the link ends or the socket closes (the read loop notices
        the closure and ends the link).
        """
        async for text in self._out_recv:
            while self.stalled:
                await self._unstall.wait()
            try:
                await self.ws.send_message(text)
            except trio_websocket.ConnectionClosed:
                return

    def start_delivery(self) -> None:
        """Switch to ``connected``: every queued item becomes pending on this link."""
        self.phase = "connected"
        self.pending.extend(self.account.queue.keys())
        self.backlog = len(self.pending)
        self.poke()

    def enqueue(self, message_id: str) -> None:
        """A new item joined the account's queue while this link is live."""
        if self.phase == "connected":
            self.pending.append(message_id)
            self.poke()

    def acked(self, message_ids: list[str]) -> None:
        self.inflight.difference_update(message_ids)
        self.poke()

    async def deliver_loop(self, offline_events: list[dict[str, Any]], on_delivered: Callable[[str], None]) -> None:
        """Send waiting events, then the queue within the window.

        Messages go out in ``messages`` frames: everything deliverable at one wake-up
        (within the window) travels in one frame, as WhatsApp batches its offline sync,
        so a busy account costs one frame per batch rather than one per message.
        ``offline_sync_done`` follows the last item of the backlog (what was queued when
        the link connected); ``on_delivered`` counts each message put on the wire.
        """
        for frame in offline_events:
            await self.send(frame)
        popped = 0
        synced = False
        while True:
            self._wake = trio.Event()
            batch = []
            while self.pending and len(self.inflight) < self.window and not self.stalled:
                message_id = self.pending.popleft()
                popped += 1
                item = self.account.queue.get(message_id)
                if item is not None and message_id not in self.inflight:
                    self.inflight.add(message_id)
                    on_delivered(message_id)
                    batch.append(item)
                if not synced and popped >= self.backlog:
                    break  # the backlog ends here: its offline_sync_done goes right after it
            if batch:
                await self.send({"ev": "messages", "msgs": batch})
            if not synced and popped >= self.backlog:
                synced = True
                await self.send({"ev": "offline_sync_done", "count": self.backlog})
                continue
            await self._wake.wait()

    def end(self, code: int | None, reason: str, **extra: Any) -> None:
        """End the link: ``code`` is the WhatsApp reason the client will be told.

        ``code=None`` means a network fault: the TCP connection is cut without a
        goodbye, and the client sees an abnormal closure. Returns at once; the
        connection's own task says goodbye (:meth:`goodbye`). Idempotent: the
        first reason wins.
        """
        if self.ended:
            return
        self.ended = True
        self.ending = None if code is None else {"ev": "close", "code": code, "reason": reason, **extra}
        self._out_send.close()
        self.cancel_scope.cancel()

    async def goodbye(self) -> None:
        """Run by the connection's task after :meth:`end`: flush, tell why, close.

        Frames queued before the end (a logout's answer) go out first, then the
        ``close`` frame, then the websocket close code ``4000 + code``. Bounded
        by ``CLOSE_GRACE``; never raises.
        """
        if self.ending is None:
            return
        with trio.move_on_after(CLOSE_GRACE):
            try:
                while True:
                    try:
                        text = self._out_recv.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    await self.ws.send_message(text)
                await self.ws.send_message(encode(self.ending))
                await self.ws.aclose(CLOSE_CODE_BASE + self.ending["code"], self.ending["reason"][:100])
            except trio_websocket.ConnectionClosed:
                pass
