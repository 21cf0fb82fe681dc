"""The bus's errors: one root, :class:`BusError`; each also subclasses the stdlib error it resembles."""

from __future__ import annotations


class BusError(Exception):
    """Root of every error the bus raises on purpose."""


class BusUnavailable(BusError, ConnectionError):
    """The backend could not be reached in time (Redis down, stalled, or the bus is not running).

    Raised fast (bounded by the backend's connect and operation timeouts) so callers can degrade
    instead of hanging. Nothing is known to have happened: a write may or may not have landed.
    Retrying later is the usual reaction; the bus reconnects by itself when the backend returns.
    """


class BusValueError(BusError, ValueError):
    """An argument is malformed (empty key, non-positive TTL, value not JSON...); the message names it."""


class LockBusy(BusError, BlockingIOError):
    """``acquire`` found the lock held by someone else (a non-blocking acquire that would block).

    ``holder`` is the current holder's owner string ("" when it did not give one).
    """

    def __init__(self, resource: str, holder: str) -> None:
        who = f" by {holder!r}" if holder else ""
        super().__init__(f"lock {resource!r} is held{who}")
        self.resource = resource
        self.holder = holder
