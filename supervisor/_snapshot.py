"""Frozen views of the supervision tree, for the API, the dashboard and metrics."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Iterator

import attrs

if TYPE_CHECKING:
    from ._records import ChildRecord


@attrs.frozen
class Failure:
    """The last abnormal exit of an actor (``at`` is trio time)."""

    type: str
    message: str
    kind: str
    at: float


@attrs.frozen
class ActorSnapshot:
    """One actor at one instant; ``children`` are snapshots too, in start order."""

    path: str
    id: str
    kind: str  # "supervisor" | "worker"
    state: str
    restart: str
    restarts: int
    last_failure: Failure | None
    breaker: str | None
    backoff_until: float | None
    mailbox_depth: int
    mailbox_capacity: int | None  # None: unbounded (supervisors)
    processed: int
    uptime: float | None
    strategy: str | None = None
    children: tuple["ActorSnapshot", ...] = ()

    def walk(self) -> Iterator["ActorSnapshot"]:
        """This snapshot and every descendant, depth first in start order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, path: str) -> "ActorSnapshot | None":
        return next((s for s in self.walk() if s.path == path), None)

    def to_dict(self) -> dict:
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: v.value if isinstance(v, enum.Enum) else v)


def snapshot(child: "ChildRecord", now: float) -> ActorSnapshot:
    """Snapshot ``child`` and its subtree at trio time ``now``."""
    cell = child.cell
    running = cell is not None and cell.started
    actor = cell.actor if cell is not None else None
    children: tuple[ActorSnapshot, ...] = ()
    strategy = None
    if child.is_supervisor and actor is not None:
        strategy = actor.strategy.value
        children = tuple(snapshot(grandchild, now) for grandchild in actor.records())
    failure = child.last_failure
    return ActorSnapshot(
        path=child.path,
        id=child.spec.id,
        kind="supervisor" if child.is_supervisor else "worker",
        state=child.state.value,
        restart=child.spec.restart.value,
        restarts=child.restarts,
        last_failure=None
        if failure is None
        else Failure(failure.error_type, failure.message, failure.kind.value, child.last_failure_at),
        breaker=child.breaker.mode.value if child.breaker is not None else None,
        backoff_until=child.backoff_until,
        mailbox_depth=cell.mailbox_depth if cell is not None else 0,
        mailbox_capacity=None if child.is_supervisor else child.spec.mailbox,
        processed=cell.processed if cell is not None else 0,
        uptime=now - cell.started_at if running else None,
        strategy=strategy,
        children=children,
    )
