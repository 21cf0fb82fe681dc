"""Errors raised by the actor runtime.

Every error derives from :class:`SupervisorError`, and also from the standard
library error it most resembles, so callers can catch either.
"""

from __future__ import annotations


class SupervisorError(Exception):
    """Root of every error the runtime raises."""


class SpecError(SupervisorError, ValueError):
    """A child spec, backoff, breaker or supervisor flag is invalid (nothing was started)."""


class MailboxFull(SupervisorError, BufferError):
    """``tell`` found the actor's bounded mailbox full; use ``send`` to wait for room."""


class ActorStopped(SupervisorError, LookupError):
    """The actor is not running (stopped, in backoff, suspended) or stopped before replying."""


class AskTimeout(SupervisorError, TimeoutError):
    """``ask`` got no reply within its timeout."""


class ActorFailed(SupervisorError, RuntimeError):
    """The handler of an ``ask`` raised; the original exception is ``cause``."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{path}: {type(cause).__name__}: {cause}")
        self.path = path
        self.cause = cause


class StartFailed(SupervisorError, RuntimeError):
    """A child did not report readiness: its start raised or exceeded its start timeout."""

    def __init__(self, child_id: str, cause: BaseException | str) -> None:
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"child {child_id!r} failed to start: {text}")
        self.child_id = child_id
        self.cause = cause


class IntensityExceeded(SupervisorError, RuntimeError):
    """A supervisor saw more restarts than its intensity allows within its period.

    The supervisor stops all its children and exits with this error, which its
    parent handles as an ordinary child failure.
    """


class Escalated(SupervisorError, RuntimeError):
    """A child asked to escalate (:class:`~supervisor.Escalate`); its supervisor fails with this."""


class Hung(SupervisorError, TimeoutError):
    """A child with a liveness timeout stopped calling ``ctx.heartbeat()``."""


class ChildError(SupervisorError, LookupError):
    """Root of the dynamic-children outcomes (OTP's ``{error, Reason}``)."""


class AlreadyStarted(ChildError):
    """``start_child``: a child with this id is already running."""


class AlreadyPresent(ChildError):
    """``start_child``: a (stopped) child with this id is still in the supervisor's list."""


class ChildNotFound(ChildError, KeyError):
    """No child with this id (or no actor at this path)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ChildRunning(ChildError):
    """``restart_child`` / ``delete_child``: the child is running."""


class ChildRestarting(ChildError):
    """``restart_child`` / ``delete_child``: the child is waiting to restart (backoff or suspended)."""
