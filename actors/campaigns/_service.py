"""The :class:`CampaignService` (``/services/campaigns``): which campaigns run here, and opt-outs.

* **Adoption.** Every tick (and at once at start: a restart after kill -9 resumes its campaigns)
  the service lists the running campaigns and, for each without an actor here whose lease it can
  take (its own, a lapsed one, none), starts a :class:`~actors.campaigns.CampaignActor` under
  ``/tenants/<tenant>/campaigns``. A dead node's campaigns are therefore taken over by another node
  once their lease (``campaigns.lease_ttl``) lapsed.
* **Requests.** :class:`Start`, :class:`Pause`, :class:`Cancel` change the campaign's status in the
  store (the truth every node reads) and start or halt the local actor at once; an actor on
  another node sees the change at its next tick.
* **Answers and opt-outs.** The node's publisher is wrapped by :class:`InboundTap`, which hands this
  service every inbound ``message.created`` of a tenant that has campaigns: a contact's message
  marks its sent campaign messages on that session as replied, and a message that is exactly a stop
  word (``campaigns.stop_words``, any case) puts the contact on the tenant's opt-out list: every
  pending recipient with its number in the tenant's campaigns is skipped (``opted_out``).
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import trio

from actors.flows import Publisher
from actors.sessions import tenant_spec
from actors.store import CampaignStatus, Conflict, NotFound
from supervisor import (
    Actor,
    ActorStopped,
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildSpec,
    ChildState,
    MailboxFull,
    Restart,
    RestartLimiter,
)

from ._campaign import CAMPAIGN_UPDATED, CampaignActor, CampaignDeps, progress_payload
from ._messages import Cancel, CampaignRefused, Halt, Pause, Start

_LOG = logging.getLogger("zapvisor.campaigns")

CAMPAIGN_SHUTDOWN = 5.0
"""Grace for a campaign actor on shutdown: a store write in hand (what it did not finish, the next
start settles)."""

TAP_CAPACITY = 10_000
"""Inbound messages waiting for the service: a burst this big is absorbed; beyond it the tap drops
(and logs) rather than slow the inbound flow down."""


@attrs.define(eq=False)
class InboundTap:
    """A :class:`~actors.flows.Publisher` in front of the node's: forwards everything, and copies
    inbound ``message.created`` events of tenants with campaigns to the campaigns service."""

    inner: Publisher
    tenants: set[str] = attrs.field(factory=set)  # tenants with campaigns (the service keeps it current)
    _send: trio.MemorySendChannel = attrs.field(init=False)
    receive: trio.MemoryReceiveChannel = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self.receive = trio.open_memory_channel(TAP_CAPACITY)

    def emit(self, tenant_id: str, type: str, payload: dict, *, ticket_id: int | str | None = None) -> None:
        self.inner.emit(tenant_id, type, payload, ticket_id=ticket_id)
        if type == "message.created" and not payload.get("from_me") and tenant_id in self.tenants:
            try:
                self._send.send_nowait((tenant_id, payload))
            except trio.WouldBlock:
                _LOG.warning("campaigns: inbound message %s of %s not checked for a stop word (tap full)",
                             payload.get("id"), tenant_id)


@attrs.define(eq=False)
class CampaignServiceDeps:
    campaigns: CampaignDeps
    limiter: RestartLimiter
    tap: InboundTap | None = None


class CampaignService(Actor):
    """See the module docstring."""

    def __init__(self, deps: CampaignServiceDeps) -> None:
        self.deps = deps
        self._wake = trio.Event()

    @property
    def _store(self) -> Any:
        return self.deps.campaigns.store

    async def on_start(self) -> None:
        self.ctx.nursery.start_soon(self._adopt_loop)
        if self.deps.tap is not None:
            self.ctx.nursery.start_soon(self._answers)

    async def receive(self, message: Any) -> Any:
        match message:
            case Start(campaign_id):
                return await self._change(campaign_id, CampaignStatus.RUNNING,
                                          (CampaignStatus.DRAFT, CampaignStatus.PAUSED))
            case Pause(campaign_id):
                return await self._change(campaign_id, CampaignStatus.PAUSED, (CampaignStatus.RUNNING,))
            case Cancel(campaign_id):
                return await self._change(campaign_id, CampaignStatus.CANCELLED,
                                          (CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED))
        raise TypeError(f"campaigns service got an unknown message {message!r}")

    async def _change(self, campaign_id: int, status: CampaignStatus, allowed: tuple) -> Any:
        reason = None if status is CampaignStatus.RUNNING else "by request"
        try:
            campaign = await self._store.set_campaign_status(campaign_id, status, allowed=allowed, reason=reason)
        except NotFound as exc:
            return CampaignRefused("not_found", str(exc))
        except Conflict as exc:
            return CampaignRefused("conflict", str(exc))
        if status is CampaignStatus.RUNNING:
            await self._adopt(campaign)
        else:
            self._halt(campaign.tenant_id, campaign_id)
        counts = await self._store.campaign_counts(campaign_id)
        self.deps.campaigns.publisher.emit(campaign.tenant_id, CAMPAIGN_UPDATED, progress_payload(campaign, counts))
        return campaign

    # -- adoption -----------------------------------------------------------------------

    async def _adopt_loop(self) -> None:
        settings = self.deps.campaigns.settings
        while True:
            campaigns = await self._store.running_campaigns()
            for campaign in campaigns:
                await self._adopt(campaign)
            if self.deps.tap is not None:
                self.deps.tap.tenants = await self._store.campaign_tenants()
            await trio.sleep(min(settings.lease_ttl / 3, 5.0))

    async def _adopt(self, campaign: Any) -> None:
        """Run the campaign here if no actor does and its lease is ours to take."""
        if self.deps.tap is not None:
            self.deps.tap.tenants.add(campaign.tenant_id)
        if self._running(campaign.tenant_id, campaign.id):
            return
        deps = self.deps.campaigns
        if not await self._store.take_campaign_lease(campaign.id, deps.node_id, deps.settings.lease_ttl):
            return
        supervisor = await self._campaigns_supervisor(campaign.tenant_id)
        spec = ChildSpec(id=str(campaign.id), factory=lambda: CampaignActor(campaign.id, deps),
                         restart=Restart.TRANSIENT, shutdown=CAMPAIGN_SHUTDOWN)
        try:
            await supervisor.delete_child(str(campaign.id))  # a previous run's stopped record
        except ChildNotFound:
            pass
        except (ChildRunning, ChildRestarting):  # started meanwhile, or its supervisor restarts it
            return
        try:
            await supervisor.start_child(spec)
        except (AlreadyStarted, AlreadyPresent):
            return
        _LOG.info("campaign %s (%s) runs on this node", campaign.id, campaign.tenant_id)

    def _running(self, tenant_id: str, campaign_id: int) -> bool:
        """Whether the campaign's actor is here in any state but stopped (running, restarting...)."""
        try:
            supervisor = self.ctx.system.supervisor(f"/tenants/{tenant_id}/campaigns")
        except ChildNotFound:
            return False
        return any(child.id == str(campaign_id) and child.state is not ChildState.STOPPED
                   for child in supervisor.which_children())

    def _halt(self, tenant_id: str, campaign_id: int) -> None:
        try:
            self.ctx.system.ref(f"/tenants/{tenant_id}/campaigns/{campaign_id}").tell(Halt())
        except (ChildNotFound, ActorStopped, MailboxFull):
            pass  # not here, restarting or stopping: it reads the status when it starts, or at its next tick

    async def _campaigns_supervisor(self, tenant_id: str) -> Any:
        system = self.ctx.system
        try:
            return system.supervisor(f"/tenants/{tenant_id}/campaigns")
        except ChildNotFound:
            pass
        try:
            await system.supervisor("/tenants").start_child(tenant_spec(tenant_id, self.deps.limiter))
        except (AlreadyStarted, AlreadyPresent):
            pass
        return system.supervisor(f"/tenants/{tenant_id}/campaigns")

    # -- answers and opt-outs -----------------------------------------------------------

    async def _answers(self) -> None:
        store, words = self._store, set(self.deps.campaigns.settings.stop_words)
        async for tenant_id, payload in self.deps.tap.receive:
            body = str(payload.get("body") or "").strip().casefold()
            stop_word = body if body in words else None
            contact = await store.get_contact(int(payload.get("contact_id") or 0))
            session_id = str(payload.get("session_id") or "")
            if contact is None or not session_id:
                continue
            if stop_word is None and not await store.awaiting_reply(tenant_id, session_id, contact.jid):
                continue
            touched = await store.contact_answered(tenant_id, session_id, contact.jid, stop_word=stop_word)
            if stop_word is not None:
                _LOG.info("campaigns: %s (%s) opted out with %r", contact.jid, tenant_id, stop_word)
            for campaign_id in touched:
                campaign = await store.get_campaign(campaign_id)
                if campaign is not None:
                    counts = await store.campaign_counts(campaign_id)
                    self.deps.campaigns.publisher.emit(tenant_id, CAMPAIGN_UPDATED, progress_payload(campaign, counts))
