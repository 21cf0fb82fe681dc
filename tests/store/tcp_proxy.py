"""A TCP proxy in front of PostgreSQL that can cut the connection exactly at a COMMIT.

That is the one failure a server restart cannot place precisely: the COMMIT reached the server
(or did not) but its answer never reached the client. ``trap("deliver")`` forwards the next
COMMIT and then cuts both sides (the server commits, the client never hears); ``trap("drop")``
cuts without forwarding it (the server rolls back); ``trap("stall")`` swallows it and leaves the
connection open and silent, as a hung server or network would (the transaction stays open).
"""

from __future__ import annotations

import attrs
import trio

#: Bytes read per receive; PostgreSQL messages here are small.
_CHUNK = 65536


@attrs.define(eq=False)
class CommitCutter:
    upstream_port: int
    port: int = 0
    cuts: int = 0
    _armed: str | None = None

    def trap(self, how: str) -> None:
        self._armed = how

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
        cut = trio.Event()  # set before the COMMIT is forwarded: no answer may reach the client
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, server, client, cut, False, nursery.cancel_scope)
            await self._pump(client, server, cut, True, nursery.cancel_scope)

    async def _pump(self, source, sink, cut: trio.Event, from_client: bool, both: trio.CancelScope) -> None:
        """Copy one direction; when it ends (EOF, error, cut), the whole connection ends."""
        try:
            await self._copy(source, sink, cut, from_client)
        finally:
            both.cancel()

    async def _copy(self, source, sink, cut: trio.Event, from_client: bool) -> None:
        try:
            while data := await source.receive_some(_CHUNK):
                if cut.is_set():
                    return
                if from_client and self._armed and b"COMMIT" in data:
                    how, self._armed = self._armed, None
                    cut.set()
                    self.cuts += 1
                    if how == "deliver":
                        await sink.send_all(data)
                    if how == "stall":
                        await trio.sleep_forever()  # nothing more either way until it is closed
                    return
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
