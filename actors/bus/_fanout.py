"""Local fan-out of pub/sub messages to subscriptions, shared by both backends.

Each node holds at most one backend subscription per channel or pattern, however many local
subscribers want it; the :class:`Fanout` maps names to local :class:`Subscription` objects and
copies every message into their bounded queues. A slow subscriber never slows the publisher or
its siblings: when its queue is full the message is dropped for it alone and a :class:`Gap`
tells it so before the next message it receives.
"""

from __future__ import annotations

import collections
import re
from typing import Any

import attrs
import trio

from ._codec import check_name, compile_glob, decode
from ._errors import BusUnavailable, BusValueError
from ._values import Gap, GapReason, Message

#: Messages a subscription buffers before it overflows. Realtime events are small; 1,000 absorbs a
#: burst from hundreds of sessions while a subscriber is busy for a moment, and bounds memory per
#: subscriber. A subscriber further behind than that must resynchronise anyway (it gets a Gap).
SUBSCRIPTION_CAPACITY = 1000

Item = Message | Gap


@attrs.define(eq=False)
class Subscription:
    """A live subscription: an async iterator of :class:`Message` and :class:`Gap` items.

    Obtained from ``bus.subscribe(...)`` (an async context manager that closes it on exit).
    Iteration ends (StopAsyncIteration) once the subscription is closed; it raises
    :class:`BusUnavailable` if the bus itself stops underneath it. Messages already queued when
    the subscription closes are discarded.
    """

    channels: tuple[str, ...]
    patterns: tuple[str, ...]
    capacity: int = SUBSCRIPTION_CAPACITY
    _items: collections.deque[Item] = attrs.field(init=False, factory=collections.deque)
    _lot: trio.lowlevel.ParkingLot = attrs.field(init=False, factory=trio.lowlevel.ParkingLot)
    _overflowed: int = attrs.field(init=False, default=0)
    _closed: bool = attrs.field(init=False, default=False)
    _failure: BaseException | None = attrs.field(init=False, default=None)
    dropped: int = attrs.field(init=False, default=0)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        """Wait for the next item.

        Raises:
            StopAsyncIteration: the subscription was closed.
            BusUnavailable: the bus stopped while this subscription was open.
        """
        while not self._items:
            self._raise_if_over()
            await self._lot.park()
        await trio.lowlevel.checkpoint()
        self._raise_if_over()
        return self._items.popleft()

    def receive_nowait(self) -> Item:
        """Return the next queued item without waiting.

        Raises:
            trio.WouldBlock: nothing is queued.
            StopAsyncIteration, BusUnavailable: as for iteration.
        """
        self._raise_if_over()
        if not self._items:
            raise trio.WouldBlock
        return self._items.popleft()

    def _raise_if_over(self) -> None:
        if self._failure is not None:
            raise BusUnavailable(f"the bus stopped under this subscription: {self._failure}")
        if self._closed:
            raise StopAsyncIteration

    def _offer(self, message: Message) -> bool:
        """Queue ``message``; False (and counted) when the queue is full."""
        if self._closed:
            return False
        if len(self._items) >= self.capacity:
            self._overflowed += 1
            self.dropped += 1
            return False
        if self._overflowed:
            self._items.append(Gap(GapReason.OVERFLOW, self._overflowed))
            self._overflowed = 0
        self._items.append(message)
        self._lot.unpark_all()
        return True

    def _offer_gap(self, reason: GapReason) -> None:
        """Queue a Gap even when full (consecutive gaps merge, so this stays bounded)."""
        if self._closed:
            return
        if self._items and isinstance(self._items[-1], Gap) and self._items[-1].reason is reason:
            return
        self._items.append(Gap(reason))
        self._lot.unpark_all()

    def _close(self, failure: BaseException | None = None) -> None:
        self._closed = True
        self._failure = failure
        self._items.clear()
        self._lot.unpark_all()


@attrs.define(eq=False)
class Fanout:
    """Which local subscriptions want which channel or pattern; copies messages to them."""

    _by_channel: dict[str, set[Subscription]] = attrs.field(init=False, factory=dict)
    _by_pattern: dict[str, set[Subscription]] = attrs.field(init=False, factory=dict)
    _globs: dict[str, re.Pattern[str]] = attrs.field(init=False, factory=dict)
    delivered: int = attrs.field(init=False, default=0)
    dropped: int = attrs.field(init=False, default=0)
    malformed: int = attrs.field(init=False, default=0)
    subscriptions: int = attrs.field(init=False, default=0)

    @property
    def channel_names(self) -> list[str]:
        return list(self._by_channel)

    @property
    def pattern_names(self) -> list[str]:
        return list(self._by_pattern)

    def add(self, sub: Subscription) -> tuple[list[str], list[str]]:
        """Register ``sub``; returns the channels and patterns nobody on this node wanted before."""
        new_channels = [c for c in sub.channels if c not in self._by_channel]
        new_patterns = [p for p in sub.patterns if p not in self._by_pattern]
        for channel in sub.channels:
            self._by_channel.setdefault(channel, set()).add(sub)
        for pattern in sub.patterns:
            self._by_pattern.setdefault(pattern, set()).add(sub)
            self._globs.setdefault(pattern, compile_glob(pattern))
        self.subscriptions += 1
        return new_channels, new_patterns

    def remove(self, sub: Subscription) -> tuple[list[str], list[str]]:
        """Close and unregister ``sub``; returns the channels and patterns nobody wants any more."""
        sub._close()
        gone_channels = self._discard(self._by_channel, sub.channels, sub)
        gone_patterns = self._discard(self._by_pattern, sub.patterns, sub)
        for pattern in gone_patterns:
            del self._globs[pattern]
        self.subscriptions -= 1
        return gone_channels, gone_patterns

    @staticmethod
    def _discard(index: dict[str, set[Subscription]], names: tuple[str, ...], sub: Subscription) -> list[str]:
        gone = []
        for name in names:
            subs = index.get(name)
            if subs is None:
                continue
            subs.discard(sub)
            if not subs:
                del index[name]
                gone.append(name)
        return gone

    def matching_patterns(self, channel: str) -> list[str]:
        """Subscribed patterns that match ``channel`` (the in-memory backend's PUBLISH)."""
        return [p for p, glob in self._globs.items() if glob.fullmatch(channel)]

    def deliver(self, channel: str, raw: str, pattern: str | None = None) -> int:
        """Copy one published JSON text to the subscribers of ``channel`` (or of ``pattern``).

        Each subscriber decodes its own copy, so no two share a mutable object. Text that is not
        JSON (a foreign publisher on a shared Redis) is counted as malformed and skipped.
        Returns how many subscribers queued it.
        """
        subs = self._by_channel.get(channel) if pattern is None else self._by_pattern.get(pattern)
        if not subs:
            return 0
        queued = 0
        for sub in list(subs):
            try:
                data: Any = decode(raw)
            except ValueError:
                self.malformed += 1
                return 0
            if sub._offer(Message(channel, data, pattern)):
                queued += 1
            else:
                self.dropped += 1
        self.delivered += queued
        return queued

    def gap_all(self, reason: GapReason) -> None:
        """Tell every subscriber that messages may have been missed."""
        for sub in self._all():
            sub._offer_gap(reason)

    def fail_all(self, failure: BaseException) -> None:
        """End every subscription with BusUnavailable (the bus is stopping)."""
        for sub in self._all():
            sub._close(failure)

    def _all(self) -> set[Subscription]:
        subs: set[Subscription] = set()
        for group in (*self._by_channel.values(), *self._by_pattern.values()):
            subs |= group
        return subs


def new_subscription(channels: tuple[str, ...], patterns: tuple[str, ...] | list[str]) -> Subscription:
    """Validate ``subscribe()`` arguments (shared by both backends) and build the Subscription."""
    chans = tuple(check_name("channel", c) for c in channels)
    pats = tuple(check_name("pattern", p) for p in patterns)
    if not chans and not pats:
        raise BusValueError("subscribe needs at least one channel or pattern")
    return Subscription(chans, pats)
