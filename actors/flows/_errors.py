"""Errors of the flows package (one root)."""

from __future__ import annotations


class FlowError(Exception):
    """Root of the errors raised by the message flows."""
