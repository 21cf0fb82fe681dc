"""Supervision as data: child specs and supervisor flags, validated on construction."""

from __future__ import annotations

import enum
import math
import re
from typing import TYPE_CHECKING, Callable

import attrs

from ._backoff import NO_BACKOFF, Backoff
from ._breaker import CircuitBreaker
from ._errors import SpecError
from ._limiter import RestartLimiter

if TYPE_CHECKING:
    from ._actor import Actor


class Restart(enum.Enum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted; its spec is dropped when it exits


class Strategy(enum.Enum):
    """OTP's restart strategies. One deviation: under ONE_FOR_ALL and REST_FOR_ONE a
    sibling stopped on purpose (``terminate_child``, a stop for good) stays stopped
    when another child's failure restarts the group; OTP would start it again."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


BRUTAL_KILL = 0.0
"""``shutdown=BRUTAL_KILL``: cancel at once, ``on_stop`` is not called."""

DEFAULT_MAILBOX = 1000
"""Room for a burst without unbounded memory; ``tell`` raises MailboxFull past it."""

_ID = re.compile(r"^[A-Za-z0-9_.:@+=-]{1,200}$")


def _check_id(instance, attribute, value) -> None:
    if not (isinstance(value, str) and _ID.match(value)):
        raise SpecError(
            f"ChildSpec.id must be 1-200 characters of letters, digits or _.:@+=- (it becomes a path segment), got {value!r}"
        )


def _check_seconds(name: str, allow_inf: bool):
    def check(instance, attribute, value) -> None:
        ok = isinstance(value, (int, float)) and value >= 0 and not math.isnan(value)
        if not ok or (not allow_inf and math.isinf(value)):
            raise SpecError(f"ChildSpec.{name} must be a number of seconds >= 0, got {value!r}")

    return check


def _optional_positive(name: str):
    def check(instance, attribute, value) -> None:
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise SpecError(f"ChildSpec.{name} must be None or > 0, got {value!r}")

    return check


def _instance_of(name: str, kind: type, optional: bool = False):
    def check(instance, attribute, value) -> None:
        if not (isinstance(value, kind) or (optional and value is None)):
            raise SpecError(f"ChildSpec.{name} must be a {kind.__name__}, got {value!r}")

    return check


@attrs.frozen
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    ``factory`` returns a fresh :class:`~supervisor.Actor` (or
    :class:`~supervisor.Supervisor`) for every incarnation. ``shutdown`` is the
    grace in seconds: ``None`` means OTP's defaults (5 s for workers, ``math.inf``
    for supervisors), ``BRUTAL_KILL`` cancels at once. ``start_timeout`` bounds the wait for
    readiness: ``None`` means 5 s for workers and no limit for supervisors (OTP gives a
    supervisor no start timeout: its children's own timeouts bound its start).
    ``liveness_timeout``: the child must call ``ctx.heartbeat()`` at least this often or it is
    treated as hung.
    """

    id: str = attrs.field(validator=_check_id)
    factory: Callable[[], "Actor"] = attrs.field()
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=_instance_of("restart", Restart))
    shutdown: float | None = attrs.field(default=None)
    backoff: Backoff = attrs.field(default=NO_BACKOFF, validator=_instance_of("backoff", Backoff))
    breaker: CircuitBreaker | None = attrs.field(
        default=None, validator=_instance_of("breaker", CircuitBreaker, optional=True)
    )
    mailbox: int = attrs.field(default=DEFAULT_MAILBOX)
    start_timeout: float | None = attrs.field(default=None)
    liveness_timeout: float | None = attrs.field(default=None, validator=_optional_positive("liveness_timeout"))
    limiter: RestartLimiter | None = attrs.field(
        default=None, validator=_instance_of("limiter", RestartLimiter, optional=True)
    )

    @factory.validator
    def _check_factory(self, attribute, value) -> None:
        if not callable(value):
            raise SpecError(f"ChildSpec.factory must be callable, got {value!r}")

    @shutdown.validator
    def _check_shutdown(self, attribute, value) -> None:
        if value is not None:
            _check_seconds("shutdown", allow_inf=True)(self, attribute, value)

    @start_timeout.validator
    def _check_start_timeout(self, attribute, value) -> None:
        if value is not None and not (isinstance(value, (int, float)) and value > 0 and not math.isnan(value)):
            raise SpecError(f"ChildSpec.start_timeout must be None or a number of seconds > 0, got {value!r}")

    @mailbox.validator
    def _check_mailbox(self, attribute, value) -> None:
        if not (isinstance(value, int) and value >= 1):
            raise SpecError(f"ChildSpec.mailbox must be an int >= 1, got {value!r}")
