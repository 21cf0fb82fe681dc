"""A level-triggered wake-up shared by a producer and one waiting loop."""

from __future__ import annotations

import attrs
import trio


@attrs.define(eq=False)
class Wakeup:
    """``set()`` from anywhere (sync, never blocks); ``await wait(timeout)`` returns when set or timed out.

    Level-triggered: a ``set()`` that happens while nobody waits is not lost, the next
    ``wait`` returns at once. Used to tell a polling loop that work arrived.
    """

    _event: trio.Event = attrs.field(factory=trio.Event)

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True if woken. Clears the flag either way."""
        with trio.move_on_after(timeout):
            await self._event.wait()
        woken = self._event.is_set()
        self._event = trio.Event()
        return woken
