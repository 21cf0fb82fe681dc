"""One connected websocket client as the hub sees it: credentials, rooms, a bounded queue.

The hub never waits for a client. It *offers* each frame to the client's queue:

1. room in the queue: queued;
2. queue full for the first time: the frame is dropped and one ``lagged`` frame is queued
   (past the capacity, so it always fits), telling the client to resume its rooms with its last
   seqs (the replay buffers usually still hold what it missed);
3. queue still full while the client has not caught up since (its queue never emptied): the
   client is closed with reason :data:`TOO_SLOW`. Its queue is discarded except one last
   ``lagged`` frame (the warning queued in step 2 may have been discarded with the rest), which
   :meth:`Client.receive` still hands out before raising; the websocket handler then ends the
   connection.

So a slow client costs the publisher one ``len()`` per frame and never slows anyone else.
"""

from __future__ import annotations

import collections
import enum

import attrs
import trio

from ._event import control
from ._rooms import Room

#: Close reason of a client that stayed full after being told it lagged.
TOO_SLOW = "too slow: the client's queue stayed full after a lagged warning"


class Offer(enum.Enum):
    """What :meth:`Client.offer` did with a frame."""

    QUEUED = "queued"
    LAGGED = "lagged"  # dropped, and the client was told it lagged
    CLOSED = "closed"  # dropped, and the client was closed (too slow)
    DROPPED = "dropped"  # dropped: the client was already closed


class ClientClosed(Exception):
    """The hub closed this client (``reason``): its connection must end."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define(eq=False)
class Client:
    """A client: ``tenant_id``/``user``/``role`` from its token, the rooms it joined (key → Room).

    Created by :meth:`Hub.connect`; the websocket handler reads frames with :meth:`receive`
    and writes them to the socket.
    """

    tenant_id: str
    user: str
    role: str
    capacity: int
    rooms: dict[str, Room] = attrs.field(factory=dict)
    lagged: bool = False
    dropped: int = 0
    closed: str | None = None
    _queue: collections.deque[str] = attrs.field(factory=collections.deque)
    _lot: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)
    _last_words: str | None = None
    closed_event: trio.Event = attrs.field(factory=trio.Event)

    @property
    def depth(self) -> int:
        return len(self._queue)

    def offer(self, frame: str) -> Offer:
        """Queue ``frame`` without waiting, applying the lag policy (module docstring)."""
        if self.closed is not None:
            return Offer.DROPPED
        if len(self._queue) < self.capacity:
            self._queue.append(frame)
            if self._lot:  # the writer waits for a frame (a busy one finds it queued: no wake-up to pay)
                self._lot.unpark()
            return Offer.QUEUED
        self.dropped += 1
        if self.lagged:
            self.close(TOO_SLOW, last_words=self._lagged_frame())
            return Offer.CLOSED
        self.lagged = True
        self._queue.append(self._lagged_frame())
        self._lot.unpark()
        return Offer.LAGGED

    def _lagged_frame(self) -> str:
        return control("lagged", dropped=self.dropped, rooms=sorted(room.name for room in self.rooms.values()))

    def push(self, frame: str) -> None:
        """Queue a frame past the capacity: replies and replays the client asked for (bounded by
        the replay buffer), which the lag policy must not turn into a disconnection."""
        if self.closed is None:
            self._queue.append(frame)
            if self._lot:
                self._lot.unpark()

    async def receive(self) -> str:
        """The next frame for the socket, waiting for one.

        Raises:
            ClientClosed: the hub closed the client (too slow, or disconnected).
        """
        return (await self.receive_many(1))[0]

    async def receive_many(self, limit: int) -> list[str]:
        """The queued frames, oldest first, at most ``limit`` of them, waiting for one: what the
        websocket writer hands the transport in one write when it wakes up behind a burst.

        Frames taken count as delivered: a queue emptied this way clears ``lagged`` as taking
        them one by one would, so a client stalled on its socket holds at most ``limit`` frames
        in its writer besides the ``capacity`` in its queue.

        Raises:
            ClientClosed: the hub closed the client (too slow, or disconnected); its last words,
                if any, are handed out alone first.
        """
        while not self._queue and self.closed is None:
            await self._lot.park()
        if self.closed is not None:
            last, self._last_words = self._last_words, None
            if last is not None:
                return [last]
            raise ClientClosed(self.closed)
        queue = self._queue
        if len(queue) <= limit:
            frames = list(queue)
            queue.clear()
        else:
            frames = [queue.popleft() for _ in range(limit)]
        if not queue:
            self.lagged = False  # caught up: the next overflow is a fresh warning
        return frames

    def close(self, reason: str, *, last_words: str | None = None) -> None:
        """End this client: queued frames are discarded (except ``last_words``, handed out once
        more), then :meth:`receive` raises ClientClosed; ``closed_event`` is set."""
        if self.closed is None:
            self.closed = reason
            self._last_words = last_words
            self._queue.clear()
            self._lot.unpark_all()
            self.closed_event.set()
