"""Messages of the campaigns service (``/services/campaigns``) and of a campaign's actor."""

from __future__ import annotations

import attrs


@attrs.frozen
class Start:
    """Start a draft campaign, or resume a paused one. Reply: the Campaign, or CampaignRefused."""

    campaign_id: int


@attrs.frozen
class Pause:
    """Pause a running campaign (its sends in flight finish). Reply: the Campaign, or CampaignRefused."""

    campaign_id: int


@attrs.frozen
class Cancel:
    """Cancel a campaign for good (pending recipients are never sent). Reply: the Campaign, or CampaignRefused."""

    campaign_id: int


@attrs.frozen
class CampaignRefused:
    code: str  # not_found, conflict
    message: str


@attrs.frozen
class Halt:
    """To a campaign's actor: its campaign left ``running`` (paused, cancelled): stop after the send in
    flight. No reply."""
