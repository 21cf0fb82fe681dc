"""Why a session's connection ended abnormally. Each one is a *retry* for the supervisor.

Root: :class:`SessionError`; each also subclasses the stdlib error it resembles.
"""

from __future__ import annotations


class SessionError(Exception):
    """Root of the session layer's errors."""


class StuckConnecting(SessionError, TimeoutError):
    """``connect()`` did not return within ``stuck_connecting_timeout``."""


class SessionDisconnected(SessionError, ConnectionError):
    """WhatsApp or the network ended the connection with a reason worth a reconnect."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"disconnected (code {code}){': ' + reason if reason else ''}")
        self.code = code


class ConnectionDead(SessionError, ConnectionError):
    """"Connected but dead": probes fail or keepalive stays lost; a targeted restart follows."""


class OwnershipLost(SessionError, RuntimeError):
    """The ownership lease ended (another node holds it or the bus is unreachable)."""
