"""Membership: which nodes are alive, what they run, and what their sessions' statuses are.

Every node publishes a heartbeat on the bus channel :data:`CHANNEL` every
``heartbeat_interval`` seconds: its :class:`~actors.cluster.Member` description (id, advertised
URL, capacity, draining) and the live status of every session it runs. A node not heard from
for ``member_ttl`` seconds has left. The heartbeats are therefore also the cluster-wide view
of who runs what: "any node answers any request" reads owners and statuses from here, never
from a stored row that a dead node wrote.

Pub/sub is fire-and-forget, so the table is soft state rebuilt by the next heartbeats: a Gap
(Redis reconnected, subscriber overflow) costs nothing but an immediate heartbeat of our own.
A node that hears a member for the first time answers with its own heartbeat at once, so a
joining node learns the cluster within one round trip, not one interval. A node that has not
heard its *own* heartbeats come back lately drops nobody: it is the one cut off from the bus
(or its subscription is stalled, or it is starved of CPU), and silence-based verdicts would be
wrong. And a silent member that still holds the lease of a session it announced is alive (its
renewals get through while its heartbeats do not: a starved process, a saturated connection
pool): it is kept until its leases lapse — the lease, not the heartbeat, is the authority on
who may run a session, so waiting for it costs a failover nothing. Heartbeats carry each
session's status compactly (no unset fields).

With the memory bus the cluster is this node alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from actors.bus import Bus, BusUnavailable, Gap, MemoryBus
from actors.sessions import lease_resource

from ._placement import Member

_LOG = logging.getLogger("zapvisor.cluster")

CHANNEL = "zapvisor.cluster"
"""The bus channel of heartbeats."""

SETTLE_BEATS = 3
"""Heartbeat intervals after start before the member list counts as settled: every live node
has been heard (the restore waits for it, so a booting node does not grab everything)."""

Running = Callable[[], Iterable[dict]]
"""This node's running sessions, as SessionInfo dicts (read at every heartbeat)."""


@attrs.frozen
class Peer:
    """What the latest heartbeat of a member said, and when it arrived (trio time)."""

    member: Member
    seen_at: float
    sessions: dict[str, dict]  # session id -> its SessionInfo dict (no session_id, no unset fields)

    def to_dict(self) -> dict:
        return {**self.member.to_dict(), "sessions": sorted(self.sessions), "load": len(self.sessions)}


@attrs.define(eq=False)
class Membership:
    """This node's membership (see the module docstring). Run it with ``nursery.start(run)``."""

    bus: Bus
    me: Member
    heartbeat_interval: float
    member_ttl: float
    running: Running = lambda: ()
    _peers: dict[str, Peer] = attrs.field(init=False, factory=dict)
    _owners: dict[str, str] = attrs.field(init=False, factory=dict)  # session id -> node id (peers only)
    _changed: trio.Event = attrs.field(init=False, factory=trio.Event)
    _beat: trio.Event = attrs.field(init=False, factory=trio.Event)
    _echo_at: float = attrs.field(init=False, default=0.0)  # trio time our own last heartbeat came back
    settled: trio.Event = attrs.field(init=False, factory=trio.Event)

    @property
    def solo(self) -> bool:
        """True when no other node can exist (the memory bus)."""
        return isinstance(self.bus, MemoryBus)

    # -- reading ---------------------------------------------------------------------------

    def members(self) -> tuple[Member, ...]:
        """The live members, this node included, sorted by id."""
        return tuple(sorted([self.me, *(p.member for p in self._peers.values())], key=lambda m: m.node_id))

    def peers(self) -> tuple[Peer, ...]:
        return tuple(self._peers.values())

    def member(self, node_id: str) -> Member | None:
        if node_id == self.me.node_id:
            return self.me
        peer = self._peers.get(node_id)
        return None if peer is None else peer.member

    def runner(self, session_id: str) -> str | None:
        """The live peer whose last heartbeat said it runs ``session_id`` (None: none does)."""
        return self._owners.get(session_id)

    def remote_status(self, session_id: str) -> dict | None:
        """The session's status as its live runner last announced it, None when no peer runs it."""
        node = self._owners.get(session_id)
        if node is None:
            return None
        return {"session_id": session_id, **self._peers[node].sessions[session_id]}

    async def wait_changed(self) -> None:
        """Return at the next change of the member set (a join, a leave, a drain, a new URL)."""
        await self._changed.wait()

    # -- changing ourselves ----------------------------------------------------------------

    def advertise(self, url: str) -> None:
        """Set the URL other nodes forward requests to (once the API listens)."""
        self.me = attrs.evolve(self.me, url=url)
        self._beat.set()

    def beat_now(self) -> None:
        """Send a heartbeat now rather than at the next interval (what we run just changed)."""
        self._beat.set()

    async def leave(self) -> None:
        """Announce that this node drains: it owns nothing from now on (one heartbeat, now).

        Raises nothing: without the bus the others learn it when our heartbeats stop.
        """
        self.me = attrs.evolve(self.me, draining=True)
        self._signal()
        await self._heartbeat()

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, heartbeat and expire silent members until cancelled.

        Reports started once subscribed; ``settled`` is set SETTLE_BEATS heartbeat intervals
        later (at once with the memory bus), when every live member has had time to be heard. Raises
        BusUnavailable when the subscription cannot be made (the hosting actor restarts).
        """
        async with self.bus.subscribe(CHANNEL) as subscription, trio.open_nursery() as nursery:
            nursery.start_soon(self._beats)
            nursery.start_soon(self._expire)
            nursery.start_soon(self._settle)
            task_status.started()
            async for item in subscription:
                if isinstance(item, Gap):
                    self._beat.set()
                else:
                    self._receive(item.data)

    async def _settle(self) -> None:
        if not self.solo:
            await trio.sleep(SETTLE_BEATS * self.heartbeat_interval)
        self.settled.set()

    async def _beats(self) -> None:
        while True:
            self._beat = trio.Event()  # before sending: a request to beat during the send is kept
            await self._heartbeat()
            with trio.move_on_after(self.heartbeat_interval):
                await self._beat.wait()

    async def _heartbeat(self) -> None:
        if self.solo:
            return
        sessions = {info["session_id"]: {k: v for k, v in info.items() if v is not None and k != "session_id"}
                    for info in self.running()}
        try:
            await self.bus.publish(CHANNEL, {**self.me.to_dict(), "sessions": sessions})
        except BusUnavailable as exc:
            _LOG.warning("cluster: heartbeat not sent: %s", exc)

    async def _expire(self) -> None:
        while True:
            await trio.sleep(self.heartbeat_interval / 2)
            now = trio.current_time()
            if now - self._echo_at > self.member_ttl / 2:
                continue  # our own heartbeats are not coming back: no verdict on the others
            for node_id, peer in list(self._peers.items()):
                if now - peer.seen_at > self.member_ttl and not await self._holds_leases(peer):
                    _LOG.warning("cluster: node %s left (silent for %.1f s)", node_id, now - peer.seen_at)
                    self._drop(node_id)
                    self._signal()

    async def _holds_leases(self, peer: Peer) -> bool:
        """Whether the silent ``peer`` still holds the lease of one session it announced (True
        when the bus cannot tell: no verdict without evidence)."""
        connected = [sid for sid, info in peer.sessions.items() if info.get("status") == "connected"]
        if not connected:
            return False
        try:
            return await self.bus.lock_owner(lease_resource(connected[0])) == peer.member.node_id
        except BusUnavailable:
            return True

    def _receive(self, beat: Any) -> None:
        try:
            member = Member(str(beat["node_id"]), beat["url"], int(beat["capacity"]), bool(beat["draining"]))
            sessions = {str(sid): dict(info) for sid, info in beat["sessions"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            _LOG.warning("cluster: malformed heartbeat skipped: %s", exc)
            return
        if member.node_id == self.me.node_id:
            self._echo_at = trio.current_time()  # the bus carries our heartbeats, and we read them
            return
        previous = self._peers.get(member.node_id)
        self._drop(member.node_id)
        self._peers[member.node_id] = Peer(member, trio.current_time(), sessions)
        for session_id in sessions:
            self._owners[session_id] = member.node_id
        handed_over = member.draining and previous is not None and previous.sessions.keys() != sessions.keys()
        if previous is None or previous.member != member or handed_over:
            if previous is None:
                _LOG.info("cluster: node %s joined (%s)", member.node_id, member.url)
                self._beat.set()  # let it hear us now, not in one interval
            self._signal()

    def _drop(self, node_id: str) -> None:
        peer = self._peers.pop(node_id, None)
        if peer is not None:
            for session_id in peer.sessions:
                if self._owners.get(session_id) == node_id:
                    del self._owners[session_id]

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


