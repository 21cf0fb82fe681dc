"""The Redis pub/sub pump: one connection per node, resubscribed after every reconnect.

Every local subscription shares one Redis PubSub connection; the pump reads it and hands
messages to the :class:`Fanout`. When the connection breaks (Redis restarted, stalled, network
cut) the pump reconnects, subscribes again to every name still wanted, and queues a
``Gap(RECONNECTED)`` for each subscription: messages published while disconnected are lost at
the bus level (Redis pub/sub does not store them); consumers resynchronise from their own source
(the Hub's replay buffer).

The PubSub comes from a client without retries: redis-py would otherwise reconnect and resubscribe
silently inside ``get_message`` and nobody would learn that messages were lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ._errors import BusUnavailable
from ._fanout import Fanout
from ._values import GapReason

#: Bridge into the asyncio loop: ``await call(proc, *args)`` runs an asyncio function from trio.
Call = Callable[..., Awaitable[Any]]

_CHANNEL = "c"
_PATTERN = "p"


@attrs.define(eq=False)
class PubSubPump:
    """Owns the node's pub/sub connection. ``run()`` lives in the Redis bus's nursery.

    ``prefix`` namespaces channel and pattern names on the server.
    """

    call: Call
    new_pubsub: Callable[[], PubSub]
    fanout: Fanout
    prefix: str
    op_timeout: float
    reconnect_delay: float
    reconnects: int = attrs.field(init=False, default=0)
    _pubsub: PubSub | None = attrs.field(init=False, default=None)
    _connected: trio.Event = attrs.field(init=False, factory=trio.Event)
    _wanted: trio.Event = attrs.field(init=False, factory=trio.Event)
    _session_scope: trio.CancelScope | None = attrs.field(init=False, default=None)
    # serialises SUBSCRIBE/UNSUBSCRIBE writers so the connection is created once and no name
    # added during a (re)connect is forgotten
    _commands: trio.Lock = attrs.field(init=False, factory=trio.Lock)
    _pending: dict[tuple[str, str], trio.Event] = attrs.field(init=False, factory=dict)
    _was_connected: bool = attrs.field(init=False, default=False)

    async def run(self) -> None:
        """Keep a subscribed connection while any name is wanted; reconnect forever. Never returns."""
        while True:
            if not self._names():
                await self._wanted.wait()
                self._wanted = trio.Event()
                continue
            with trio.CancelScope() as scope:
                self._session_scope = scope
                try:
                    await self._session()
                except (RedisError, OSError):
                    pass  # the connection broke: reconnect below after a pause
            self._session_scope = None
            await trio.sleep(self.reconnect_delay)

    def reset(self) -> None:
        """Drop the current connection (the health check saw Redis unreachable); run() reconnects."""
        if self._session_scope is not None:
            self._session_scope.cancel()

    async def ensure(self, channels: list[str], patterns: list[str]) -> None:
        """Subscribe to names no local subscription wanted before, and wait for Redis to confirm.

        Raises:
            BusUnavailable: not connected, or no confirmation within ``op_timeout``.
        """
        waits = [self._expect(_CHANNEL, c) for c in channels] + [self._expect(_PATTERN, p) for p in patterns]
        self._wanted.set()
        with trio.move_on_after(self.op_timeout):
            await self._connected.wait()
            async with self._commands:
                if self._pubsub is not None:
                    await self._send(self._pubsub, channels, patterns)
            for event in waits:
                await event.wait()
            return
        raise BusUnavailable(f"Redis did not confirm the subscription within {self.op_timeout}s")

    async def drop(self, channels: list[str], patterns: list[str]) -> None:
        """Unsubscribe names nobody wants any more (best effort: a reconnect forgets them anyway)."""
        if not channels and not patterns:
            return
        for name in channels:
            self._pending.pop((_CHANNEL, self.prefix + name), None)
        for name in patterns:
            self._pending.pop((_PATTERN, self.prefix + name), None)
        with trio.CancelScope(shield=True), trio.move_on_after(self.op_timeout):
            async with self._commands:
                pubsub = self._pubsub
                if pubsub is None:
                    return
                try:
                    if channels:
                        await self.call(pubsub.unsubscribe, *(self.prefix + c for c in channels))
                    if patterns:
                        await self.call(pubsub.punsubscribe, *(self.prefix + p for p in patterns))
                except (RedisError, OSError):
                    self.reset()

    def _names(self) -> bool:
        return bool(self.fanout.channel_names or self.fanout.pattern_names)

    def _expect(self, kind: str, name: str) -> trio.Event:
        return self._pending.setdefault((kind, self.prefix + name), trio.Event())

    async def _send(self, pubsub: PubSub, channels: list[str], patterns: list[str]) -> None:
        if channels:
            await self.call(pubsub.subscribe, *(self.prefix + c for c in channels))
        if patterns:
            await self.call(pubsub.psubscribe, *(self.prefix + p for p in patterns))

    async def _session(self) -> None:
        """Connect, subscribe to every wanted name, then read until the connection breaks."""
        pubsub = self.new_pubsub()
        try:
            async with self._commands:
                # names added after this line wait for the lock, then send on the live connection
                channels, patterns = self.fanout.channel_names, self.fanout.pattern_names
                for name in channels:
                    self._expect(_CHANNEL, name)
                for name in patterns:
                    self._expect(_PATTERN, name)
                await self._send(pubsub, channels, patterns)
                self._pubsub = pubsub
            if self._was_connected:
                self.reconnects += 1
                self.fanout.gap_all(GapReason.RECONNECTED)
            self._was_connected = True
            self._connected.set()
            while True:
                self._handle(await self.call(pubsub.get_message, timeout=None))
        finally:
            self._pubsub = None
            if self._connected.is_set():
                self._connected = trio.Event()
            await self._close(pubsub)

    def _handle(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        kind, channel = message["type"], message["channel"]
        if kind in ("subscribe", "psubscribe"):
            event = self._pending.pop((_CHANNEL if kind == "subscribe" else _PATTERN, channel), None)
            if event is not None:
                event.set()
        elif kind == "message":
            self.fanout.deliver(channel[len(self.prefix) :], message["data"])
        elif kind == "pmessage":
            pattern = message["pattern"][len(self.prefix) :]
            self.fanout.deliver(channel[len(self.prefix) :], message["data"], pattern)

    async def _close(self, pubsub: PubSub) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(self.op_timeout):
            try:
                await self.call(pubsub.aclose)
            except (RedisError, OSError):
                pass  # closing a broken connection may fail; it is discarded either way
