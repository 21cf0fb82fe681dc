"""The supervisor's decisions, as pure functions of data.

Nothing here touches trio: the supervisor passes in the classified exit, the
restart history and the clock reading, and acts on what comes back. The tests
in ``tests/supervisor/test_decide.py`` pin the whole table.
"""

from __future__ import annotations

import enum
import random

from ._backoff import Backoff
from ._exits import Exit, ExitKind
from ._spec import Restart, Strategy


class Action(enum.Enum):
    RESTART = "restart"  # start it again (after a delay)
    KEEP_STOPPED = "keep_stopped"  # not restarted; spec kept for inspection / restart_child
    REMOVE = "remove"  # temporary child: spec dropped
    ESCALATE = "escalate"  # the supervisor stops everything and fails to its parent


def decide(restart: Restart, exit: Exit) -> Action:
    """OTP's restart table, plus the classified exits zapvisor adds."""
    if exit.kind is ExitKind.ESCALATE:
        return Action.ESCALATE
    if restart is Restart.TEMPORARY:
        return Action.REMOVE
    if exit.kind is ExitKind.STOP_FOR_GOOD:
        return Action.KEEP_STOPPED
    if restart is Restart.PERMANENT or exit.is_failure:
        return Action.RESTART
    return Action.KEEP_STOPPED


def add_restart(history: tuple[float, ...], now: float, period: float) -> tuple[float, ...]:
    """Restart times still within ``period`` of ``now``, plus ``now`` (OTP's add_restart)."""
    return tuple(t for t in history if now - t <= period) + (now,)


def intensity_exceeded(history: tuple[float, ...], intensity: int) -> bool:
    """More than ``intensity`` restarts in the window: the supervisor gives up."""
    return len(history) > intensity


def restart_delay(backoff: Backoff, attempt: int, previous: float, exit: Exit, rng: random.Random) -> float:
    """Backoff delay for this attempt; a ``RetryAfter`` exit waits at least its time."""
    delay = backoff.delay(attempt, previous, rng)
    if exit.kind is ExitKind.RETRY_AFTER:
        delay = max(delay, exit.retry_after)
    return delay


def restart_group(strategy: Strategy, start_order: tuple[str, ...], failed: str) -> tuple[str, ...]:
    """Which children a failure of ``failed`` stops and restarts, in start order."""
    match strategy:
        case Strategy.ONE_FOR_ONE:
            return (failed,)
        case Strategy.ONE_FOR_ALL:
            return start_order
        case Strategy.REST_FOR_ONE:
            return start_order[start_order.index(failed) :]
