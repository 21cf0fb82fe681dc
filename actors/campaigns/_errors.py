"""Errors of the campaigns package (one root)."""

from __future__ import annotations


class CampaignError(Exception):
    """Root of the errors raised by the campaigns package."""


class CampaignInvalid(CampaignError, ValueError):
    """A campaign's definition is refused: ``field`` names what is wrong (``recipients[3].phone``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
