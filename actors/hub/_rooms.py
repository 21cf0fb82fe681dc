"""Rooms: what a client may join, and how a room is keyed inside the hub.

Every room belongs to one tenant, except the node-wide ``supervision`` room of the node admin.
Clients name rooms the short way
(``tenant:acme``, ``ticket:42``, ``status:connected``, ``notifications``, ``supervision``); the
hub keys them with the tenant of the client's token in front (``acme/ticket:42``). Two tenants
asking for ``ticket:42`` therefore join two different rooms: isolation holds by construction,
and joining an id that belongs to someone else reveals nothing (it is simply an empty room).

``supervision`` exists twice: node-wide (key ``supervision``, every actor's lifecycle, for the node
admin whose credentials carry no tenant) and per tenant (``acme/supervision``, only the events of
actors under ``/tenants/acme/``, for that tenant's admins) — so no tenant ever sees another
tenant's session ids in the tree's events.
"""

from __future__ import annotations

import enum
import functools
import re

import attrs

from ._errors import InvalidRoom, RoomForbidden

#: Tenant ids, ticket ids and status names: short, printable, no separators of our own.
_ID = re.compile(r"[A-Za-z0-9_.@-]{1,128}")


class RoomKind(enum.StrEnum):
    TENANT = "tenant"
    TICKET = "ticket"
    STATUS = "status"
    NOTIFICATIONS = "notifications"
    SUPERVISION = "supervision"


#: The one role that may join ``supervision``.
ADMIN_ROLE = "admin"


@attrs.frozen
class Room:
    """One room. ``scope`` is the owning tenant ('' for ``supervision``), ``arg`` the id or name."""

    kind: RoomKind
    scope: str
    arg: str = ""
    #: The name clients use (``ticket:42``).
    name: str = attrs.field(init=False, eq=False, repr=False)
    #: The hub-wide key (``acme/ticket:42``; ``supervision`` has no tenant).
    key: str = attrs.field(init=False, eq=False, repr=False)

    @name.default
    def _name(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else str(self.kind)

    @key.default
    def _key(self) -> str:
        return f"{self.scope}/{self.name}" if self.scope else self.name

    # -- constructors used by publishers --------------------------------------------------

    # Rooms are immutable values: the two every message event is published to are memoised
    # (validated once), a few thousand active tickets' worth.

    @classmethod
    def tenant(cls, tenant_id: str) -> Room:
        if not isinstance(tenant_id, str):
            _check("tenant_id", tenant_id)  # raises InvalidRoom (the memo needs a hashable key)
        return _tenant_room(tenant_id)

    @classmethod
    def ticket(cls, tenant_id: str, ticket_id: int | str) -> Room:
        if not isinstance(tenant_id, str):
            _check("tenant_id", tenant_id)  # raises InvalidRoom (the memo needs a hashable key)
        return _ticket_room(tenant_id, str(ticket_id))

    @classmethod
    def status(cls, tenant_id: str, status: str) -> Room:
        return cls(RoomKind.STATUS, _check("tenant_id", tenant_id), _check("status", str(status)))

    @classmethod
    def notifications(cls, tenant_id: str) -> Room:
        return cls(RoomKind.NOTIFICATIONS, _check("tenant_id", tenant_id))

    @classmethod
    def supervision(cls, tenant_id: str = "") -> Room:
        """The node-wide room (no tenant), or the room of one tenant's part of the tree."""
        return cls(RoomKind.SUPERVISION, _check("tenant_id", tenant_id) if tenant_id else "")

    @classmethod
    def from_key(cls, key: str) -> Room:
        """Inverse of :attr:`key` (envelopes from other nodes carry keys).

        Raises:
            InvalidRoom: ``key`` is not a room key.
        """
        scope, _, name = key.rpartition("/")
        kind, _, arg = name.partition(":")
        try:
            room_kind = RoomKind(kind)
        except ValueError:
            raise InvalidRoom(f"room: unknown room kind in {key!r}") from None
        if room_kind is not RoomKind.SUPERVISION and scope == "":
            raise InvalidRoom(f"room: {key!r} has no tenant")
        if scope:
            _check("room", scope)
        if (room_kind in (RoomKind.NOTIFICATIONS, RoomKind.SUPERVISION)) != (arg == ""):
            raise InvalidRoom(f"room: {key!r} is malformed")
        if arg:
            _check("room", arg)
        return cls(room_kind, scope, arg)


@functools.lru_cache(maxsize=1024)
def _tenant_room(tenant_id: str) -> Room:
    return Room(RoomKind.TENANT, _check("tenant_id", tenant_id), tenant_id)


@functools.lru_cache(maxsize=1024)  # the tickets being worked on now; more only fills memory for hours (the soak)
def _ticket_room(tenant_id: str, ticket_id: str) -> Room:
    return Room(RoomKind.TICKET, _check("tenant_id", tenant_id), _check("ticket_id", ticket_id))


def resolve(name: object, *, tenant_id: str, role: str) -> Room:
    """The room a client named ``name`` means, checked against its credentials.

    ``tenant_id`` '' is the node admin (admin token): it may join any ``tenant:<id>`` and the
    node-wide ``supervision``; rooms that need a tenant (ticket, status, notifications) it cannot
    name. Everyone else gets its own tenant's rooms only.

    Raises:
        InvalidRoom: ``name`` is not a room name.
        RoomForbidden: ``tenant:<other>``, ``supervision`` without the admin role, or a
            tenant-scoped room asked for by the node admin.
    """
    if not isinstance(name, str):
        raise InvalidRoom(f"room: must be a string, got {type(name).__name__}")
    kind, sep, arg = name.partition(":")
    try:
        room_kind = RoomKind(kind)
    except ValueError:
        raise InvalidRoom(f"room: unknown room {name!r}") from None
    if not tenant_id and room_kind not in (RoomKind.TENANT, RoomKind.SUPERVISION):
        raise RoomForbidden(f"room: the node admin has no tenant; join 'tenant:<id>' instead of {name!r}")
    match room_kind:
        case RoomKind.TENANT if not tenant_id:
            return Room.tenant(_check("room", arg))
        case RoomKind.TENANT:
            if _check("room", arg) != tenant_id:
                raise RoomForbidden(f"room: {name!r} is not your tenant's room")
            return Room.tenant(tenant_id)
        case RoomKind.TICKET:
            return Room.ticket(tenant_id, _check("room", arg))
        case RoomKind.STATUS:
            return Room.status(tenant_id, _check("room", arg))
        case RoomKind.NOTIFICATIONS | RoomKind.SUPERVISION if sep:
            raise InvalidRoom(f"room: {kind!r} takes no argument, got {name!r}")
        case RoomKind.NOTIFICATIONS:
            return Room.notifications(tenant_id)
        case RoomKind.SUPERVISION:
            if role != ADMIN_ROLE:
                raise RoomForbidden("room: 'supervision' is for admins only")
            return Room.supervision(tenant_id)


def _check(field: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidRoom(f"{field}: must be 1-128 characters of [A-Za-z0-9_.@-], got {value!r}")
    return value
