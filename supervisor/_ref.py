"""Addressing actors: refs that survive restarts, and the ask envelope.

An :class:`ActorRef` names a child *slot* in its supervisor, not one
incarnation: after a restart the same ref reaches the new incarnation. While
the child is not running (backoff, suspended, stopped) every call raises
:class:`~supervisor.ActorStopped`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._errors import ActorStopped, AskTimeout, MailboxFull

if TYPE_CHECKING:
    from ._records import ChildRecord

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds an ``ask`` waits by default: long enough for a store round trip, short enough for a human."""


@attrs.define(eq=False, slots=True)
class Reply:
    """The one-shot answer slot an ``ask`` waits on."""

    event: trio.Event = attrs.field(factory=trio.Event)
    value: Any = None
    error: BaseException | None = None

    def set(self, value: Any) -> None:
        if not self.event.is_set():
            self.value = value
            self.event.set()

    def fail(self, error: BaseException) -> None:
        if not self.event.is_set():
            self.error = error
            self.event.set()

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    async def wait(self) -> Any:
        """Wait for the answer and return it, or raise what the ask raises (see ``ActorRef.ask``).

        No deadline of its own: wrap it in a cancel scope (one scope can cover many replies).
        """
        await self.event.wait()
        return self.result()


@attrs.frozen(slots=True)
class Ask:
    """Envelope of an ``ask``: the message and where its reply goes."""

    message: Any
    reply: Reply


@attrs.define(eq=False, slots=True, repr=False)
class ActorRef:
    """Send messages to the actor living at ``path``."""

    _child: "ChildRecord"

    @property
    def path(self) -> str:
        return self._child.path

    def __repr__(self) -> str:
        return f"<ActorRef {self._child.path}>"

    def __eq__(self, other: object) -> bool:
        """Refs are equal when they name the same child (whatever its incarnation)."""
        return isinstance(other, ActorRef) and other._child is self._child

    def __hash__(self) -> int:
        return id(self._child)

    def tell(self, message: Any) -> None:
        """Deliver without waiting. Raises MailboxFull or ActorStopped."""
        cell = self._child.cell
        if cell is None:
            raise ActorStopped(f"{self._child.path} is not running")
        try:
            cell.send_channel.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull(f"{self._child.path}: mailbox full ({cell.capacity})") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ActorStopped(f"{self._child.path} is not running") from None

    async def send(self, message: Any) -> None:
        """Deliver, waiting for room in the mailbox (backpressure). Raises ActorStopped."""
        cell = self._child.cell
        if cell is None:
            raise ActorStopped(f"{self._child.path} is not running")
        try:
            await cell.send_channel.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ActorStopped(f"{self._child.path} stopped") from None

    async def ask(self, message: Any, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """Send and wait for the handler's return value.

        Raises AskTimeout (no reply in time; the message may still be handled),
        ActorFailed (the handler raised: the actor crashed, ``cause`` is the
        original), or ActorStopped (not running, or stopped before replying).
        """
        reply = Reply()
        with trio.move_on_after(timeout):
            await self.send(Ask(message, reply))
            await reply.event.wait()
            return reply.result()
        raise AskTimeout(f"{self._child.path}: no reply to {type(message).__name__} within {timeout} s")

    async def request(self, message: Any) -> Reply:
        """Send ``message`` as an ask and return its :class:`Reply` without waiting for it.

        Scatter-gather: request from many actors, then ``await reply.wait()`` each, under one
        deadline; the actors work concurrently with no task per request. Waits for room in the
        mailbox like :meth:`send`. Raises ActorStopped.
        """
        reply = Reply()
        await self.send(Ask(message, reply))
        return reply

    def request_nowait(self, message: Any) -> Reply:
        """:meth:`request` without waiting for room: raises MailboxFull or ActorStopped."""
        reply = Reply()
        self.tell(Ask(message, reply))
        return reply


def fail_pending(message: Any, path: str) -> None:
    """Answer an undelivered ``ask`` with ActorStopped (its actor is gone)."""
    if type(message) is Ask:
        message.reply.fail(ActorStopped(f"{path} stopped before replying"))
