"""The store gate: what a node's sessions share to wait out a store outage.

A session stores its inbound messages and receipts through the store (via the
ticket actors). When the database is unreachable every one of those writes
fails for the same reason, and none of it is the session's fault: crashing
would spend the session's backoff, open its breaker and make WhatsApp re-deliver
in a loop. Instead the session waits at one shared :class:`UpstreamGate` named
``store`` (see ``_upstream``): one trial write at a time probes, and when it
commits every waiting session goes on, holding its unacknowledged messages
meanwhile (WhatsApp keeps the rest).
"""

from __future__ import annotations

from actors.store import StoreClosed, StoreUnavailable
from supervisor import ActorFailed, Backoff, Jitter

from ._upstream import UpstreamGate

STORE_TRIAL_BACKOFF = Backoff(min=0.5, max=2.0, jitter=Jitter.EQUAL)
"""Spacing of the trial writes while the store is down. With the PostgreSQL writer's own reconnect
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
    return UpstreamGate(name="store", unavailable=store_unavailable, threshold=1, backoff=STORE_TRIAL_BACKOFF)
