"""Errors of the media package (one root)."""

from __future__ import annotations


class MediaError(Exception):
    """Root of the errors raised by the media package."""


class PermanentMediaError(MediaError, ValueError):
    """A download that no retry can fix (too large, gone from WhatsApp): straight to the dead letters."""
