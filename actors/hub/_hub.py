"""The Hub: realtime fan-out of events to websocket clients, across nodes through the bus.

Life: ``hub = Hub(node_id=..., bus=..., board=...)``, run it with ``await nursery.start(hub.run,
system)`` (in a node: an ``/infra/hub`` actor after the bus). Then:

* :meth:`Hub.publish` (room, type, payload): delivers at once to this node's members, records the
  event in the room's replay buffer with the next seq, and forwards it to the other nodes through
  the bus pub/sub channel :data:`BUS_CHANNEL`. Never blocks, never fails for a slow client.
* :meth:`Hub.emit` (tenant, type, payload, ticket_id): the :class:`~actors.hub.Publisher` hook the
  flows call: the tenant room (+ the ticket room) and the taps (the webhooks service).
* Feeds, started by :meth:`Hub.run`: every StatusBoard change goes to ``status:<status>`` and
  ``tenant:<id>`` (``connection.update``, or ``qrcode.updated`` with a QR); every supervision
  lifecycle event goes to ``supervision`` (``supervision.<kind>``).

Sequence numbers are per room *and per node*: each node numbers what it delivers (its own events
and those from other nodes) in one order. The ``epoch`` sent with ``joined`` names that numbering;
a client resuming on another node (other epoch) is told to resync.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import secrets
from typing import Any, Callable

import attrs
import trio

from actors.bus import BusUnavailable, Gap

from ._client import Client, Offer
from ._errors import InvalidEvent, InvalidRoom
from ._event import RoomLog, check_at, check_payload, check_type, control, event_frame
from ._rooms import Room, resolve

_LOG = logging.getLogger("zapvisor.hub")

#: The bus channel every node's hub publishes to and listens on.
BUS_CHANNEL = "zapvisor.hub"

#: Events kept per room for resumes: a few minutes of a busy ticket, ~100 KB per room at most.
REPLAY_CAPACITY = 256

#: Seconds of events a room keeps for resumes (its last REPLAY_CAPACITY at most): long enough to
#: resume after a dropped connection or a closed laptop lid; an older ``since`` gets ``resync``.
#: Bounds the logs' memory by the event rate, not by how many tickets are open (RoomLog).
REPLAY_AGE = 300.0

#: Events a room keeps whatever their age: a quiet ticket's whole history (RoomLog).
REPLAY_MIN = 32

#: Frames a client may be behind before it is warned (then dropped): a burst from a busy tenant
#: fits, and 1,000 clients x 256 small frames stays in the tens of MB.
CLIENT_CAPACITY = 256

#: Room logs kept (the ones with members are never evicted): bounds memory when tickets churn.
MAX_ROOMS = 10_000

#: Seconds a room without members keeps its log after its last event: long enough for a client
#: to resume after a dropped connection or a closed laptop lid; a later resume gets ``resync``.
#: Without it a churning helpdesk kept the logs of every closed ticket up to MAX_ROOMS (~100 KB
#: each at most): the soak's steadiest memory growth.
ROOM_IDLE = 120.0

#: Least recently used rooms looked at for idleness each time a room is created (O(1) per event).
IDLE_SCAN = 8

#: Events waiting to be forwarded to the bus: a few seconds of a busy node while the bus is slow;
#: beyond that events still reach local clients but not the other nodes (counted, logged).
BUS_BACKLOG = 10_000

#: Events forwarded to the bus in one message at most: bounds one message's size (~100 KB).
BUS_BATCH = 256

#: Receives an emitted event on its origin node only (webhooks); must not block.
Tap = Callable[[str, str, dict], None]


@attrs.frozen
class HubStatistics:
    clients: int
    rooms: int
    published: int
    remote: int
    delivered: int
    lagged: int
    disconnected_slow: int
    bus_dropped: int


@attrs.define(eq=False)
class Hub:
    """Rooms, clients and the fan-out between them (see the module docstring).

    ``wall_clock`` turns trio time into the Unix time of an event's ``at`` (a node's hub uses the actor
    system's ``wall_time`` once :meth:`run` gets the system).
    """

    node_id: str = "node"
    bus: Any = None
    board: Any = None
    replay: int = REPLAY_CAPACITY
    replay_age: float = REPLAY_AGE
    replay_min: int = REPLAY_MIN
    client_capacity: int = CLIENT_CAPACITY
    max_rooms: int = MAX_ROOMS
    room_idle: float = ROOM_IDLE
    wall_clock: Callable[[float], float] = lambda t: t
    epoch: str = attrs.field(factory=lambda: secrets.token_hex(6))
    _logs: collections.OrderedDict[str, RoomLog] = attrs.field(init=False, factory=collections.OrderedDict)
    _members: dict[str, set[Client]] = attrs.field(init=False, factory=dict)
    _clients: set[Client] = attrs.field(init=False, factory=set)
    _taps: list[Tap] = attrs.field(init=False, factory=list)
    _generation: int = attrs.field(init=False, default=0)
    _outgoing: tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel] = attrs.field(
        init=False, factory=lambda: trio.open_memory_channel(BUS_BACKLOG)
    )
    _stats: collections.Counter = attrs.field(init=False, factory=collections.Counter)

    # -- clients --------------------------------------------------------------------------

    def connect(self, tenant_id: str, user: str, role: str) -> Client:
        """A new client with the credentials of its (already verified) token."""
        client = Client(tenant_id, user, role, self.client_capacity)
        self._clients.add(client)
        return client

    def disconnect(self, client: Client, reason: str = "disconnected") -> None:
        """Remove ``client`` from every room and close it. Idempotent."""
        for key in list(client.rooms):
            self._leave_key(client, key)
        self._clients.discard(client)
        client.close(reason)

    def join(self, client: Client, name: object, *, since: int | None = None, epoch: str | None = None) -> Room:
        """Add ``client`` to the room it calls ``name``; queue ``joined`` (with the room's current
        seq and epoch), then — when ``since`` is given — the events after it, or ``resync`` when
        they are gone (or ``epoch`` is not the room's).

        Raises:
            InvalidRoom, RoomForbidden: from :func:`~actors.hub._rooms.resolve`.
        """
        room = resolve(name, tenant_id=client.tenant_id, role=client.role)
        log = self._log(room)
        if room.key not in client.rooms:
            client.rooms[room.key] = room
            self._members.setdefault(room.key, set()).add(client)
        client.push(control("joined", room=room.name, seq=log.seq, epoch=log.epoch))
        if since is not None:
            missed = log.since(since) if epoch in (None, log.epoch) else None
            if missed is None:
                client.push(control("resync", room=room.name, seq=log.seq, epoch=log.epoch))
            else:
                for frame in missed:
                    client.push(frame)
        return room

    def leave(self, client: Client, name: object) -> Room:
        """Remove ``client`` from a room (leaving a room it is not in is fine); queue ``left``.

        Raises:
            InvalidRoom, RoomForbidden: as for :meth:`join`.
        """
        room = resolve(name, tenant_id=client.tenant_id, role=client.role)
        self._leave_key(client, room.key)
        client.push(control("left", room=room.name))
        return room

    def _leave_key(self, client: Client, key: str) -> None:
        client.rooms.pop(key, None)
        members = self._members.get(key)
        if members is not None:
            members.discard(client)
            if not members:
                del self._members[key]

    # -- publishing -----------------------------------------------------------------------

    def publish(self, room: Room, type: str, payload: dict) -> int:
        """Deliver an event to ``room`` here and on every other node; returns its seq. Never blocks.

        Raises:
            InvalidEvent: ``type`` is not a dotted name, ``payload`` not a JSON object.
        """
        return self._publish((room,), check_type(type), payload, check_payload(payload))[0]

    def emit(self, tenant_id: str, type: str, payload: dict, *, ticket_id: int | str | None = None) -> None:
        """The :class:`~actors.hub.Publisher` hook: publish to the tenant's room (and the ticket's
        room when ``ticket_id`` is given), then hand the event to the taps (webhooks).

        Raises:
            InvalidEvent, InvalidRoom: bad type, payload, tenant or ticket id.
        """
        tenant = Room.tenant(tenant_id)
        rooms = (tenant,) if ticket_id is None else (tenant, Room.ticket(tenant_id, ticket_id))
        self._publish(rooms, check_type(type), payload, check_payload(payload))
        for tap in self._taps:
            tap(tenant_id, type, payload)

    def _publish(self, rooms: tuple[Room, ...], type: str, payload: dict, payload_json: str) -> list[int]:
        """One event into ``rooms``: delivered here, and queued once for the other nodes."""
        at = self.wall_clock(trio.current_time())
        seqs = [self._deliver(room, type, at, payload_json) for room in rooms]
        if self.bus is not None:
            try:
                self._outgoing[0].send_nowait(([room.key for room in rooms], type, payload_json, at))
            except trio.WouldBlock:
                self._stats["bus_dropped"] += 1
                if self._stats["bus_dropped"] == 1:
                    _LOG.warning("hub: the bus is not keeping up; events reach this node's clients only")
        self._stats["published"] += len(rooms)
        return seqs

    def add_tap(self, tap: Tap) -> None:
        """Also give every :meth:`emit` (on this node) to ``tap``; it must not block."""
        self._taps.append(tap)

    def remove_tap(self, tap: Tap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def _deliver(self, room: Room, type: str, at: float, payload_json: str) -> int:
        """Record the event in the room's log and offer its frame to the room's members; its seq."""
        log = self._log(room)
        seq = log.append(type, payload_json, at)
        self._logs.move_to_end(room.key)
        members = self._members.get(room.key)
        if members:
            # the frame is built once for the room; each member costs one offer (no wake-up while
            # its writer is busy, which is when fan-out is heavy)
            frame, delivered, ended = event_frame(type, room.name, seq, payload_json, at), 0, []
            for client in members:
                outcome = client.offer(frame)
                if outcome is Offer.QUEUED:
                    delivered += 1
                elif outcome is Offer.LAGGED:
                    self._stats["lagged"] += 1
                else:
                    ended.append(client)
                    if outcome is Offer.CLOSED:
                        self._stats["disconnected_slow"] += 1
            self._stats["delivered"] += delivered
            for client in ended:
                self.disconnect(client, client.closed)
        return seq

    def _log(self, room: Room) -> RoomLog:
        log = self._logs.get(room.key)
        if log is None:
            self._evict_idle()
            self._generation += 1
            log = self._logs[room.key] = RoomLog(
                room.name, f"{self.epoch}.{self._generation}", self.replay, self.replay_age, self.replay_min)
            if len(self._logs) > self.max_rooms:
                self._evict_one()
        return log

    def _evict_idle(self) -> None:
        """Drop the logs of rooms without members that were quiet for ``room_idle`` (the least
        recently used first: publishing moves a room to the end, so the scan stops at a recent one)."""
        horizon = self.wall_clock(trio.current_time()) - self.room_idle
        for key in list(itertools.islice(self._logs, IDLE_SCAN)):
            if self._logs[key].last_at > horizon:
                return
            if key not in self._members:
                del self._logs[key]

    def _evict_one(self) -> None:
        for key in self._logs:
            if key not in self._members:
                del self._logs[key]
                return

    # -- reading --------------------------------------------------------------------------

    def room_seq(self, room: Room) -> int:
        """The last seq of ``room`` on this node (0 if nothing was published yet)."""
        log = self._logs.get(room.key)
        return 0 if log is None else log.seq

    def statistics(self) -> HubStatistics:
        s = self._stats
        return HubStatistics(
            clients=len(self._clients), rooms=len(self._logs), published=s["published"], remote=s["remote"],
            delivered=s["delivered"], lagged=s["lagged"], disconnected_slow=s["disconnected_slow"],
            bus_dropped=s["bus_dropped"],
        )

    # -- the hub's tasks ------------------------------------------------------------------

    async def run(self, system: Any = None, *, task_status: trio.TaskStatus[Hub] = trio.TASK_STATUS_IGNORED) -> None:
        """Bridge to the bus and feed the rooms from the board and the tree, until cancelled.

        Reports started once the bus subscription is confirmed. Raises what the bus raises when
        it cannot subscribe (BusUnavailable): the hub's actor then fails and is restarted.
        """
        if system is not None:
            self.wall_clock = system.wall_time
        async with trio.open_nursery() as nursery:
            if self.bus is not None:
                await nursery.start(self._bridge)
            if self.board is not None:
                nursery.start_soon(self._feed_board, self.board.subscribe())  # subscribed before started
            if system is not None:
                nursery.start_soon(self._feed_supervision, system, system.events())
            task_status.started(self)

    async def _bridge(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.bus.subscribe(BUS_CHANNEL) as subscription, trio.open_nursery() as nursery:
            nursery.start_soon(self._forward)
            task_status.started()
            async for item in subscription:
                if isinstance(item, Gap):
                    self._resync_all(f"bus gap ({item.reason.value})")
                else:
                    self._receive_remote(item.data)

    async def _forward(self) -> None:
        """Forward this node's events to the bus: whatever is queued goes as one bus message
        (``{"node", "events": [[[room key, ...], type, payload JSON, at], ...]}``), so a busy node pays
        one publish per batch, not per event, and a slow bus makes the batches grow."""
        outgoing = self._outgoing[1]
        async for first in outgoing:
            events = [first]
            while len(events) < BUS_BATCH:
                try:
                    events.append(outgoing.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                await self.bus.publish(BUS_CHANNEL, {"node": self.node_id, "events": events})
            except BusUnavailable as exc:
                self._stats["bus_dropped"] += len(events)
                _LOG.warning("hub: %d events not forwarded to other nodes: %s", len(events), exc)

    def _receive_remote(self, envelope: Any) -> None:
        try:
            if envelope["node"] == self.node_id:
                return  # our own events, delivered locally when published
            events = [
                ([Room.from_key(key) for key in keys], check_type(type), payload_json, check_at(at))
                for keys, type, payload_json, at in envelope["events"]
            ]
            for rooms, type, payload_json, at in events:
                if not isinstance(json.loads(payload_json), dict):
                    raise TypeError("an event payload is not a JSON object")
                for room in rooms:
                    self._deliver(room, type, at, payload_json)
                self._stats["remote"] += len(rooms)
        except (ValueError, KeyError, TypeError, InvalidRoom, InvalidEvent) as exc:
            _LOG.warning("hub: malformed envelope from the bus skipped: %s", exc)

    def _resync_all(self, why: str) -> None:
        """Events from other nodes may be missing: every client must resync every room."""
        _LOG.warning("hub: %s; telling %d clients to resync", why, len(self._clients))
        for client in list(self._clients):
            for room in client.rooms.values():
                log = self._log(room)
                client.push(control("resync", room=room.name, seq=log.seq, epoch=log.epoch))

    async def _feed_board(self, updates: trio.MemoryReceiveChannel) -> None:
        while True:
            async with updates:
                async for info in updates:
                    self.publish_status(info)
            _LOG.warning("hub: fell behind the status board; resubscribed")
            updates = self.board.subscribe()

    def publish_status(self, info: Any) -> None:
        """One StatusBoard change (a SessionInfo) to ``status:<status>`` and ``tenant:<id>``."""
        payload = info.to_dict()
        payload["status"] = str(info.status)
        kind = "qrcode.updated" if payload["status"] == "qr" and info.qr else "connection.update"
        self.publish(Room.status(info.tenant_id, payload["status"]), kind, payload)
        self.publish(Room.tenant(info.tenant_id), kind, payload)

    def publish_lifecycle(self, event: Any) -> None:
        """One supervision LifecycleEvent to the node-wide ``supervision`` room, and to the
        tenant's own when the actor lives under ``/tenants/<id>/``."""
        payload = event.to_dict()
        payload["at"] = self.wall_clock(event.at)
        kind = f"supervision.{event.kind.value}"
        self.publish(Room.supervision(), kind, payload)
        parts = event.path.split("/")
        if len(parts) > 2 and parts[1] == "tenants":
            try:
                room = Room.supervision(parts[2])
            except InvalidRoom:
                return  # a tenant id the rooms cannot name has no tenant room to feed
            self.publish(room, kind, payload)

    async def _feed_supervision(self, system: Any, events: Any) -> None:
        while True:
            with events:
                async for event in events:
                    self.publish_lifecycle(event)
            _LOG.warning("hub: fell behind the supervision events; resubscribed")
            events = system.events()
