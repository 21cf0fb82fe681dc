"""The store's errors: one root, :class:`StoreError`; each also subclasses the stdlib error it resembles."""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error the store raises on purpose."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database could not be reached (or the write was not confirmed) before the caller's deadline.

    ``outcome_unknown`` is True when the write had already been sent inside a transaction whose
    COMMIT was interrupted and whose fate was not resolved in time: it may or may not be stored.
    Every write the store offers is safe to retry (unique keys make re-inserts no-ops), so the
    usual reaction is to retry later. When it is False the write was withdrawn and is not stored.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class StoreClosed(StoreError, RuntimeError):
    """The store is not running (not started yet, or stopped): nothing was written."""


class SchemaTooNew(StoreError, RuntimeError):
    """The database's schema version is newer than this code knows: refuse to touch it."""


class FencedOut(StoreError, PermissionError):
    """A write carried a fencing token older than one already seen for its resource.

    The lock it was guarded by has since been granted to someone else: the writer must stop.
    """

    def __init__(self, resource: str, token: int, current: int) -> None:
        super().__init__(
            f"fencing token {token} for {resource!r} is older than the newest seen ({current}): "
            "the lock was lost, the write was refused"
        )
        self.resource = resource
        self.token = token
        self.current = current


class NotFound(StoreError, LookupError):
    """The row a write or read names does not exist."""


class Conflict(StoreError, ValueError):
    """The write contradicts the current state (e.g. accepting a ticket another agent holds)."""


class InvalidInput(StoreError, ValueError):
    """An argument is malformed; the message names the field."""


class WriteFailed(StoreError, RuntimeError):
    """The database rejected this write (the message carries the engine's error).

    Only this write failed: the other writes batched with it were retried on their own and
    committed (see the group-commit notes in :mod:`actors.store`).
    """
