"""How an actor says why it stopped, and how the runtime classifies it.

An actor's run ends in one of these ways:

- it returns, or raises :class:`Shutdown`: a *normal* exit;
- it raises :class:`RetryAfter`: abnormal, and the next restart waits at least
  ``seconds`` (a ban's expiry);
- it raises :class:`StopForGood`: never restarted, whatever its restart type;
  its spec stays for inspection (a logged-out session);
- it raises :class:`Escalate`: its supervisor gives up and fails to its parent;
- anything else is *abnormal*.

:func:`classify` turns the exception into a frozen :class:`Exit` value, which the
pure decision functions in ``_decide`` consume.
"""

from __future__ import annotations

import enum

import attrs


class ActorExit(Exception):
    """Base of the exit reasons an actor may raise on purpose."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Shutdown(ActorExit):
    """A normal, deliberate stop: a transient child is not restarted."""


class RetryAfter(ActorExit):
    """Abnormal exit whose next restart must wait at least ``seconds``."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        if not seconds >= 0:
            raise ValueError(f"RetryAfter.seconds must be >= 0, got {seconds!r}")
        super().__init__(reason)
        self.seconds = float(seconds)


class StopForGood(ActorExit):
    """The actor must not be restarted (logged out, banned for good)."""


class Escalate(ActorExit):
    """The failure cannot be handled here: the supervisor fails to its parent."""


class ExitKind(enum.Enum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"
    RETRY_AFTER = "retry_after"
    STOP_FOR_GOOD = "stop_for_good"
    ESCALATE = "escalate"
    KILLED = "killed"  # cancelled by its supervisor (shutdown grace ran out or brutal kill)


@attrs.frozen
class Exit:
    """A classified exit: what happened and enough text to show an operator."""

    kind: ExitKind
    error_type: str = ""
    message: str = ""
    retry_after: float = 0.0

    @property
    def is_failure(self) -> bool:
        """True when a transient child would be restarted for it."""
        return self.kind in (ExitKind.ABNORMAL, ExitKind.RETRY_AFTER, ExitKind.KILLED)


NORMAL = Exit(ExitKind.NORMAL)


def unwrap(exc: BaseException) -> BaseException:
    """Return the single exception inside nested one-member exception groups.

    trio nurseries wrap a child task's error in an ``ExceptionGroup``; an actor
    whose background task raised ``RetryAfter`` should be classified by that.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def classify(exc: BaseException | None) -> Exit:
    """Map how an actor ended (``None`` = returned) to an :class:`Exit`."""
    if exc is None:
        return NORMAL
    exc = unwrap(exc)
    name = type(exc).__name__
    match exc:
        case Shutdown():
            return Exit(ExitKind.NORMAL, name, exc.reason)
        case RetryAfter():
            return Exit(ExitKind.RETRY_AFTER, name, exc.reason, exc.seconds)
        case StopForGood():
            return Exit(ExitKind.STOP_FOR_GOOD, name, exc.reason)
        case Escalate():
            return Exit(ExitKind.ESCALATE, name, exc.reason)
        case BaseExceptionGroup():  # several tasks failed at once: name each inner cause
            causes = "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(exc))
            return Exit(ExitKind.ABNORMAL, name, f"{exc.message} [{causes}]")
        case _:
            return Exit(ExitKind.ABNORMAL, name, str(exc))


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """The exceptions inside ``group`` and its nested groups, in order."""
    return [leaf for inner in group.exceptions
            for leaf in (_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])]
