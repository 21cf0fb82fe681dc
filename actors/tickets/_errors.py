"""Errors of the tickets package (one root)."""

from __future__ import annotations


class TicketError(Exception):
    """Root of the errors raised by the tickets package."""


class TicketUnavailable(TicketError, RuntimeError):
    """A ticket actor could not be reached after retries (it kept stopping, or could not start)."""
