"""Campaigns of a tenant: create (recipients as JSON or CSV, a template, sessions, schedule, pacing),
list, get with progress, list recipients by state, start, pause, resume, cancel.

A definition is checked whole (:func:`actors.campaigns.build_campaign`) before the one write that
creates the campaign with all its recipients: a refused row refuses the request (400 naming
``recipients_csv[<row>].<column>`` or ``recipients[<index>].<field>``) and nothing is written.
Status changes go to the campaigns service (``/services/campaigns``), which starts or halts the
campaign's actor; reads come from the store.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from quart import Blueprint

from actors.campaigns import (
    DAYS,
    CampaignInvalid,
    CampaignRefused,
    Cancel,
    Pacing,
    Pause,
    RecipientInput,
    Schedule,
    Start,
    build_campaign,
    parse_csv,
    progress_payload,
    table,
)
from actors.store import NotFound as StoreNotFound
from actors.store import RecipientState
from supervisor import ActorFailed, ActorStopped, AskTimeout, ChildNotFound

from ._audit import record
from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound, Unavailable
from ._routing import Auth, endpoint, path_param, state
from ._tickets import Media, _store_attachment
from ._validate import MAX_ID, Body, Id, Identifier, Limit, Query, Text, text

bp = Blueprint("campaigns", __name__)

path_param("campaign_id", Id)

SERVICE = "/services/campaigns"
ASK_TIMEOUT = 30.0
STATES = tuple(s.value for s in RecipientState)
MAX_CSV = 1024 * 1024


class RecipientsBody(Body):
    columns: Annotated[list[text(64)], Field(min_length=1, max_length=50, description=(
        "phone, and the names of the template's {{placeholders}}"))]
    rows: Annotated[list[Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=50)]], Field(
        min_length=1, max_length=100_000, description="one recipient per row, its values in column order")]


class ScheduleBody(Body):
    timezone: Annotated[text(64), Field(description="IANA name; default campaigns.timezone")] = None
    hours: Annotated[list[Annotated[int, Field(ge=0, le=24)]], Field(
        min_length=2, max_length=2, description="[from, to) local hours; default [0, 24]")] = [0, 24]
    days: Annotated[list[Literal[DAYS]], Field(
        min_length=1, max_length=7, description="default: every day")] = list(DAYS)
    start_at: Annotated[float, Field(
        ge=0, le=4_102_444_800, description="wall-clock seconds (epoch); default: at start")] = None


class PacingBody(Body):
    delay: Annotated[list[Annotated[float, Field(ge=0.001, le=86400)]], Field(
        min_length=2, max_length=2, description="[low, high] seconds between two sends of a session")] = None
    daily_cap: Annotated[int, Field(ge=1, le=100_000)] = None
    cold_daily_cap: Annotated[int, Field(ge=0, le=100_000)] = None
    failure_threshold: Annotated[int, Field(ge=1, le=10_000)] = None


class CreateBody(Body):
    name: text(200)
    text: Annotated[Text, Field(description="the message (a caption with media), with {{placeholders}}")]
    media: Media = None
    sessions: Annotated[list[Identifier], Field(min_length=1, max_length=100,
                                                description="the tenant's sessions to send through, rotating")]
    recipients: RecipientsBody = None
    recipients_csv: Annotated[str, Field(max_length=MAX_CSV, description=(
        "CSV text instead of recipients: a header naming the columns (phone required; the others are "
        "variables), one recipient per row"))] = None
    schedule: ScheduleBody = None
    pacing: PacingBody = None
    start: Annotated[bool, Field(description="start at once (default: a draft, started with /start)")] = False


class ListQuery(Query):
    limit: Limit = 100


class RecipientsQuery(Query):
    state: Literal[STATES] = None
    after_position: Annotated[int, Field(ge=-1, le=MAX_ID)] = -1
    limit: Limit = 100


async def _with_progress(campaign: Any) -> dict:
    return progress_payload(campaign, await state().node.store.campaign_counts(campaign.id)) | {
        "tenant_id": campaign.tenant_id, "sessions": list(campaign.sessions), "template": campaign.template,
        "schedule": campaign.schedule, "pacing": campaign.pacing, "created_at": campaign.created_at,
        "started_at": campaign.started_at, "finished_at": campaign.finished_at, "owner": campaign.owner}


async def _campaign_or_404(tenant_id: str, campaign_id: int) -> Any:
    campaign = await state().node.store.get_campaign(campaign_id)
    if campaign is None or campaign.tenant_id != tenant_id:
        raise NotFound(f"no campaign {campaign_id} in tenant {tenant_id!r}", "campaign_id")
    return campaign


def _recipients(body: CreateBody) -> list[RecipientInput]:
    if (body.recipients is None) == (body.recipients_csv is None):
        raise BadRequest("give exactly one of recipients and recipients_csv", "recipients")
    if body.recipients is not None:
        return table(body.recipients.columns, body.recipients.rows)
    return parse_csv(body.recipients_csv)


@endpoint(bp, "POST", "/tenants/{tenant_id}/campaigns",
          summary="Create a campaign (a draft, or started with start=true) from recipients or CSV; a bad row "
                  "is a 400 naming it, and nothing is written", auth=Auth.TENANT_ADMIN, body=CreateBody, status=201)
async def create_campaign(who: Principal, tenant_id: str, body: CreateBody):
    node = state().node
    for index, session_id in enumerate(body.sessions):
        session = await node.store.get_session(session_id)
        if session is None or session.tenant_id != tenant_id:
            raise NotFound(f"no session {session_id!r} in tenant {tenant_id!r}", f"sessions[{index}]")
    settings = node.settings.campaigns
    given = {} if body.pacing is None else body.pacing.model_dump(exclude_none=True)
    schedule = body.schedule or ScheduleBody()
    try:
        recipients = _recipients(body)
        pacing = Pacing.from_document(given, settings)
        plan = Schedule(schedule.timezone or settings.timezone, tuple(schedule.hours), tuple(schedule.days),
                        schedule.start_at)
        media = None if body.media is None else await _store_attachment(tenant_id, body.media)
        definition = build_campaign(name=body.name, text=body.text, media=None if media is None else {
            "path": media.path, "kind": media.kind, "mimetype": media.mimetype, "file_name": media.file_name},
            sessions=body.sessions, schedule=plan, pacing=pacing, recipients=recipients)
    except CampaignInvalid as error:
        raise BadRequest(str(error), error.field) from None
    try:
        campaign = await node.store.create_campaign(
            tenant_id, definition.name, template=definition.template, sessions=definition.sessions,
            schedule=plan.to_document(), pacing=pacing.to_document(), recipients=definition.recipients)
    except StoreNotFound as error:
        raise NotFound(str(error), "tenant_id") from None
    await record(who, "create_campaign", f"{tenant_id}/{campaign.id}", "ok", f"{campaign.total} recipients")
    if body.start:
        campaign = await _ask(Start(campaign.id))
    return await _with_progress(campaign)


@endpoint(bp, "GET", "/tenants/{tenant_id}/campaigns", summary="The tenant's campaigns with progress, newest first",
          auth=Auth.TENANT, query=ListQuery)
async def list_campaigns(who: Principal, tenant_id: str, query: ListQuery):
    return [await _with_progress(c) for c in await state().node.store.list_campaigns(tenant_id, limit=query.limit)]


@endpoint(bp, "GET", "/campaigns", summary="Every tenant's campaigns with progress, newest first (admin)",
          auth=Auth.ADMIN, query=ListQuery)
async def all_campaigns(who: Principal, query: ListQuery):
    return [await _with_progress(c) for c in await state().node.store.list_campaigns(limit=query.limit)]


@endpoint(bp, "GET", "/tenants/{tenant_id}/campaigns/{campaign_id}", summary="A campaign with its progress",
          auth=Auth.TENANT)
async def get_campaign(who: Principal, tenant_id: str, campaign_id: int):
    return await _with_progress(await _campaign_or_404(tenant_id, campaign_id))


@endpoint(bp, "GET", "/tenants/{tenant_id}/campaigns/{campaign_id}/recipients",
          summary="A campaign's recipients in list order (paged with after_position), optionally by state",
          auth=Auth.TENANT, query=RecipientsQuery)
async def campaign_recipients(who: Principal, tenant_id: str, campaign_id: int, query: RecipientsQuery):
    await _campaign_or_404(tenant_id, campaign_id)
    states = () if query.state is None else (RecipientState(query.state),)
    recipients = await state().node.store.list_recipients(campaign_id, states=states,
                                                          after_position=query.after_position, limit=query.limit)
    last = recipients[-1].position if len(recipients) == query.limit else None
    return {"recipients": recipients, "next_after_position": last}


async def _ask(message: Any) -> Any:
    try:
        reply = await state().node.system.ref(SERVICE).ask(message, ASK_TIMEOUT)
    except (ChildNotFound, AskTimeout, ActorStopped, ActorFailed) as error:
        raise Unavailable(f"the campaigns service did not answer: {type(error).__name__}") from None
    if isinstance(reply, CampaignRefused):
        raise (NotFound if reply.code == "not_found" else Conflict)(reply.message, "campaign_id")
    return reply


async def _change(who: Principal, tenant_id: str, campaign_id: int, message: Any, action: str) -> dict:
    await _campaign_or_404(tenant_id, campaign_id)
    campaign = await _ask(message)
    await record(who, action, f"{tenant_id}/{campaign_id}", "ok")
    return await _with_progress(campaign)


@endpoint(bp, "POST", "/tenants/{tenant_id}/campaigns/{campaign_id}/start", summary="Start a draft campaign",
          auth=Auth.TENANT_ADMIN)
async def start_campaign(who: Principal, tenant_id: str, campaign_id: int):
    return await _change(who, tenant_id, campaign_id, Start(campaign_id), "start_campaign")


@endpoint(bp, "POST", "/tenants/{tenant_id}/campaigns/{campaign_id}/pause",
          summary="Pause a running campaign (the send in flight finishes)", auth=Auth.TENANT_ADMIN)
async def pause_campaign(who: Principal, tenant_id: str, campaign_id: int):
    return await _change(who, tenant_id, campaign_id, Pause(campaign_id), "pause_campaign")


@endpoint(bp, "POST", "/tenants/{tenant_id}/campaigns/{campaign_id}/resume",
          summary="Resume a paused campaign (also one paused automatically)", auth=Auth.TENANT_ADMIN)
async def resume_campaign(who: Principal, tenant_id: str, campaign_id: int):
    return await _change(who, tenant_id, campaign_id, Start(campaign_id), "resume_campaign")


@endpoint(bp, "POST", "/tenants/{tenant_id}/campaigns/{campaign_id}/cancel",
          summary="Cancel a campaign for good (its pending recipients are never sent)", auth=Auth.TENANT_ADMIN)
async def cancel_campaign(who: Principal, tenant_id: str, campaign_id: int):
    return await _change(who, tenant_id, campaign_id, Cancel(campaign_id), "cancel_campaign")
