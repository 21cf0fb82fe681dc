"""Realtime fan-out to websocket clients (DESIGN §5 "Hub").

Rooms (:class:`Room`): ``tenant:<id>``, ``ticket:<id>``, ``status:<name>``, ``notifications`` (all
scoped to the client's tenant) and ``supervision`` (admins). Events (:func:`event_frame`) carry a per-room
sequence number; a reconnecting client resumes from its last seq out of a bounded replay buffer or
is told to ``resync``. Each client (:class:`Client`) has a bounded queue: a slow one is told it
``lagged``, then disconnected — publishing never waits. Events cross nodes through the bus.

The flows announce their events through the :class:`Publisher` hook (``hub.emit``).
"""

from ._client import TOO_SLOW, Client, ClientClosed, Offer
from ._errors import HubError, InvalidEvent, InvalidRoom, RoomForbidden
from ._event import CONTROL_TYPES, RoomLog, check_type, control, event_frame
from ._hub import BUS_CHANNEL, CLIENT_CAPACITY, REPLAY_CAPACITY, Hub, HubStatistics, Tap
from ._publisher import Publisher
from ._rooms import ADMIN_ROLE, Room, RoomKind, resolve

__all__ = [
    "ADMIN_ROLE",
    "BUS_CHANNEL",
    "CLIENT_CAPACITY",
    "CONTROL_TYPES",
    "REPLAY_CAPACITY",
    "TOO_SLOW",
    "Client",
    "ClientClosed",
    "Hub",
    "HubError",
    "HubStatistics",
    "InvalidEvent",
    "InvalidRoom",
    "Offer",
    "Publisher",
    "Room",
    "RoomForbidden",
    "RoomKind",
    "RoomLog",
    "Tap",
    "check_type",
    "control",
    "event_frame",
    "resolve",
]
