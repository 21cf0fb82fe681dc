"""Lifecycle events: what the runtime did, as a stream and a short history.

Publishing never blocks the runtime: each subscriber has a bounded buffer, and a
subscriber that falls behind is dropped (its iterator ends and ``dropped`` is
set), so an admin's slow websocket can never slow a restart.
"""

from __future__ import annotations

import collections
import enum
from typing import AsyncIterator

import attrs
import trio


class EventKind(enum.Enum):
    STARTED = "started"
    EXITED = "exited"
    RESTART_SCHEDULED = "restart_scheduled"
    RESTARTED = "restarted"
    START_FAILED = "start_failed"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    BREAKER = "breaker"
    INTENSITY_EXCEEDED = "intensity_exceeded"
    STOPPED = "stopped"


@attrs.frozen
class LifecycleEvent:
    """One thing that happened to the actor at ``path``, at trio time ``at``."""

    kind: EventKind
    path: str
    at: float
    reason: str = ""
    delay: float | None = None
    breaker: str | None = None

    def to_dict(self) -> dict:
        return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in attrs.asdict(self).items()}


SUBSCRIBER_BUFFER = 1000
"""Events a subscriber may fall behind by before it is dropped (a burst of restarts fits)."""

HISTORY = 1000
"""Recent events kept for ``/supervision/events`` and late subscribers."""


@attrs.define(eq=False)
class Subscription:
    """An async iterator of events; ``dropped`` tells whether it fell behind."""

    _receive: trio.MemoryReceiveChannel
    _hub: "EventHub"
    dropped: bool = False

    def __aiter__(self) -> AsyncIterator[LifecycleEvent]:
        return self._receive.__aiter__()

    async def receive(self) -> LifecycleEvent:
        return await self._receive.receive()

    def close(self) -> None:
        self._hub._subscribers.pop(self, None)
        self._receive.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@attrs.define(eq=False)
class EventHub:
    _subscribers: dict[Subscription, trio.MemorySendChannel] = attrs.field(factory=dict)
    history: collections.deque = attrs.field(factory=lambda: collections.deque(maxlen=HISTORY))

    def subscribe(self, buffer: int = SUBSCRIBER_BUFFER) -> Subscription:
        send, receive = trio.open_memory_channel[LifecycleEvent](buffer)
        subscription = Subscription(receive, self)
        self._subscribers[subscription] = send
        return subscription

    def publish(self, event: LifecycleEvent) -> None:
        self.history.append(event)
        for subscription, send in list(self._subscribers.items()):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                subscription.dropped = True
                send.close()
                del self._subscribers[subscription]
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                del self._subscribers[subscription]

    def close(self) -> None:
        for send in self._subscribers.values():
            send.close()
        self._subscribers.clear()
