"""Campaigns: bulk sends to a contact list, paced to protect the numbers (issue 17).

* :class:`CampaignService` (``/services/campaigns``, :class:`CampaignServiceDeps`): starts the actor of
  every running campaign whose lease this node holds (at start too: a campaign survives kill -9 and
  node failover), answers :class:`Start`, :class:`Pause`, :class:`Cancel` (reply: the store's
  Campaign or :class:`CampaignRefused`), and turns inbound stop words into opt-outs through
  :class:`InboundTap`, the node publisher's wrapper.
* :class:`CampaignActor` (``/tenants/<tenant>/campaigns/<id>``, :class:`CampaignDeps`): one running
  campaign — lanes per session, pacing (:class:`SessionPacer`, :class:`Pacing`), schedule window
  (:class:`Schedule`), each recipient sent at most once through the outbox (exactly once unless a
  send's outcome is unknown).
* :func:`build_campaign` checks a definition (recipients from JSON or CSV, template, sessions,
  schedule, pacing) before anything is written; :class:`CampaignInvalid` names the field at fault.
"""

from ._build import CampaignDefinition, RecipientInput, build_campaign, parse_csv, table
from ._campaign import CAMPAIGN_UPDATED, CampaignActor, CampaignDeps, SessionPacer, progress_payload
from ._errors import CampaignError, CampaignInvalid
from ._messages import Cancel, CampaignRefused, Halt, Pause, Start
from ._policy import DAYS, Pacing, Schedule, placeholders, render
from ._service import CampaignService, CampaignServiceDeps, InboundTap

__all__ = [
    "CAMPAIGN_UPDATED",
    "DAYS",
    "CampaignActor",
    "CampaignDefinition",
    "CampaignDeps",
    "CampaignError",
    "CampaignInvalid",
    "CampaignRefused",
    "CampaignService",
    "CampaignServiceDeps",
    "Cancel",
    "Halt",
    "InboundTap",
    "Pacing",
    "Pause",
    "RecipientInput",
    "Schedule",
    "SessionPacer",
    "Start",
    "build_campaign",
    "parse_csv",
    "placeholders",
    "progress_payload",
    "render",
    "table",
]
