"""The store and bus gates: what a node's sessions share to wait out a dependency's outage.

A session stores its inbound messages and receipts through the store (via the
ticket actors). When the database is unreachable every one of those writes
fails for the same reason, and none of it is the session's fault: crashing
would spend the session's backoff, open its breaker and make WhatsApp re-deliver
in a loop. Instead the session waits at one shared :class:`UpstreamGate` named
``store`` (see ``_upstream``): one trial write at a time probes, and when it
commits every waiting session goes on, holding its unacknowledged messages
meanwhile (WhatsApp keeps the rest).

The bus gate does the same for the bus (Redis), which a session needs for its
ownership lease: when a renewal fails because the bus is unreachable the
session stops using the account (the lease's safety rule) but does not fail:
it waits at the ``bus`` gate, where one trial read at a time probes, and takes
its lease again as soon as the bus answers.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs

from actors.bus import BusUnavailable
from actors.store import StoreClosed, StoreUnavailable
from supervisor import ActorFailed, Backoff, Jitter

from ._upstream import UpstreamGate

TRIAL_BACKOFF = Backoff(min=0.5, max=2.0, jitter=Jitter.EQUAL)
"""Spacing of the trials while a dependency is down. With the PostgreSQL writer's own reconnect
backoff (at most 2 s) a session writes again within ~4 s of the database's return: the 5 s promise."""


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store could not be reached (not that this write was wrong).

    Looks through a ticket actor's ``ActorFailed`` and through exception groups
    (a batch writes its conversations concurrently: all must agree).
    """
    if isinstance(exc, BaseExceptionGroup):
        return all(store_unavailable(inner) for inner in exc.exceptions)
    if isinstance(exc, ActorFailed):
        return store_unavailable(exc.cause)
    return isinstance(exc, (StoreUnavailable, StoreClosed))


def store_gate() -> UpstreamGate:
    """A node's store gate: one unreachable write closes it (the store tried for its whole timeout)."""
    return UpstreamGate(name="store", unavailable=store_unavailable, threshold=1, backoff=TRIAL_BACKOFF)


def bus_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the bus could not be reached."""
    return isinstance(exc, BusUnavailable)


def bus_gate() -> UpstreamGate:
    """A node's bus gate: one unreachable call closes it."""
    return UpstreamGate(name="bus", unavailable=bus_unavailable, threshold=1, backoff=TRIAL_BACKOFF)


@attrs.frozen
class GatedStore:
    """The store seen through a gate: every call (``await gated.get_campaign(...)``) goes through
    ``gate.call``, so its caller waits out a store outage at the node's gate instead of failing.
    For actors that call the store in many places (campaigns); each call must be safe to run
    again, as :meth:`UpstreamGate.call` requires."""

    store: Any
    gate: UpstreamGate

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def through_gate(*args: Any, **kwargs: Any) -> Any:
            return await self.gate.call(functools.partial(method, *args, **kwargs))

        through_gate.__name__ = name
        return through_gate
