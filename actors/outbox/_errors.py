"""Errors of the outbox package (one root)."""

from __future__ import annotations


class OutboxError(Exception):
    """Root of the errors raised by the outbox package."""
