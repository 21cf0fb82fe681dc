"""The hub's errors: one root, each also the stdlib error it resembles."""

from __future__ import annotations


class HubError(Exception):
    """Root of every error the hub raises."""


class InvalidRoom(HubError, ValueError):
    """A room name that is malformed or names an unknown kind of room (the message names it)."""


class RoomForbidden(HubError, PermissionError):
    """A client asked for a room its credentials do not open (another tenant's, or admins only)."""


class InvalidEvent(HubError, ValueError):
    """An event that does not validate: bad type name or a payload JSON cannot carry."""
