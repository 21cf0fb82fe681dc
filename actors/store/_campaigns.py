"""Campaign rows: the campaigns, their recipients and the tenant's opt-outs (the store half of
:mod:`actors.campaigns`).

A campaign is created with all its recipients in one write (:class:`CreateCampaign`): a refused
row refuses the whole campaign and nothing is half-written. Each recipient then moves once:

``pending`` → ``queued`` (:class:`QueueRecipient`: committed *before* its outbox row is made, so a
restart finds every recipient that may have an outbox row) → ``sent`` or ``failed``
(:class:`FinishRecipient`, from the outbox row's outcome); or ``pending`` → ``skipped`` with a
reason (opted out, invalid number...). :class:`QueueRecipient` checks the opt-out list in the same
transaction, so a contact who opted out a moment before is skipped, never sent.

The outbox row of a recipient is keyed ``campaign:<campaign id>:<position>`` (the store's
idempotency key), so whichever node queues it again after a crash gets the same row: each recipient
is sent at most once by the outbox, and the campaign waits for that row's outcome.

The driving node holds a lease on the campaign (``owner`` until ``lease_until``, wall clock):
:class:`TakeCampaignLease` grants it to the owner again, or to anyone once it lapsed.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import attrs

from ._errors import Conflict, InvalidInput, NotFound
from ._reads import check_limit
from ._records import from_row


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # created, not started
    RUNNING = "running"
    PAUSED = "paused"  # by request, or automatically (``reason`` says why)
    FINISHED = "finished"  # every recipient sent, failed or skipped
    CANCELLED = "cancelled"


class RecipientState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"  # its outbox row may exist: the campaign waits for its outcome
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _names(value: Any) -> tuple[str, ...]:
    return tuple(_doc(value))


@attrs.frozen
class Campaign:
    """A campaign. ``template`` is ``{"text", "media"?}``; ``schedule`` and ``pacing`` are the
    policies as given (see :mod:`actors.campaigns`); ``total`` counts its recipients."""

    id: int
    tenant_id: str
    name: str
    status: CampaignStatus = attrs.field(converter=CampaignStatus)
    reason: str | None
    template: dict = attrs.field(converter=_doc)
    sessions: tuple[str, ...] = attrs.field(converter=_names)
    schedule: dict = attrs.field(converter=_doc)
    pacing: dict = attrs.field(converter=_doc)
    total: int
    owner: str | None
    lease_until: float | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None


@attrs.frozen
class Recipient:
    id: int
    campaign_id: int
    position: int
    phone: str
    jid: str
    variables: dict = attrs.field(converter=_doc)
    state: RecipientState = attrs.field(converter=RecipientState)
    skip_reason: str | None
    session_id: str | None
    outbox_id: int | None
    cold: bool = attrs.field(converter=bool)
    error: str | None
    queued_at: float | None
    sent_at: float | None
    replied_at: float | None
    updated_at: float


@attrs.frozen
class NewRecipient:
    """A recipient to create: ``skip_reason`` set when it is known at once (``invalid_number``)."""

    phone: str
    jid: str
    variables: dict
    skip_reason: str | None = None


@attrs.frozen
class Outcome:
    """The outbox's word on a queued recipient's row (``status`` None: no row yet)."""

    recipient_id: int
    position: int
    session_id: str
    outbox_id: int | None
    status: str | None
    last_error: str | None
    updated_at: float | None


def outbox_key(campaign_id: int, position: int) -> str:
    """The idempotency key of a recipient's outbox row: stable across restarts and nodes."""
    return f"campaign:{campaign_id}:{position}"


_SKIP_OPTED_OUT = (
    "UPDATE campaign_recipients SET state = 'skipped', skip_reason = 'opted_out', updated_at = $3 "
    "WHERE state = 'pending' AND campaign_id IN (SELECT id FROM campaigns WHERE tenant_id = $1) "
)


@attrs.frozen
class CreateCampaign:
    tenant_id: str
    name: str
    template: dict
    sessions: tuple[str, ...]
    schedule: dict
    pacing: dict
    recipients: tuple[NewRecipient, ...]

    async def apply(self, tx: Any, now: float) -> Campaign:
        if await tx.fetchval("SELECT 1 FROM tenants WHERE id = $1", self.tenant_id) is None:
            raise NotFound(f"tenant_id: no tenant {self.tenant_id!r}")
        row = await tx.fetchrow(
            "INSERT INTO campaigns (tenant_id, name, status, template, sessions, schedule, pacing, total, "
            "created_at, updated_at) VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $8) RETURNING *",
            self.tenant_id, self.name, json.dumps(self.template), json.dumps(list(self.sessions)),
            json.dumps(self.schedule), json.dumps(self.pacing), len(self.recipients), now,
        )
        campaign = from_row(Campaign, row)
        await tx.executemany(
            "INSERT INTO campaign_recipients (campaign_id, position, phone, jid, variables, state, skip_reason, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(campaign.id, position, r.phone, r.jid, json.dumps(r.variables),
              "pending" if r.skip_reason is None else "skipped", r.skip_reason, now)
             for position, r in enumerate(self.recipients)],
        )
        await tx.execute(
            _SKIP_OPTED_OUT + "AND campaign_id = $2 AND jid IN (SELECT jid FROM campaign_optouts WHERE tenant_id = $1)",
            self.tenant_id, campaign.id, now,
        )
        return campaign


@attrs.frozen
class SetCampaignStatus:
    """Move a campaign to ``status`` from one of ``allowed`` (Conflict otherwise)."""

    campaign_id: int
    status: CampaignStatus
    allowed: tuple[CampaignStatus, ...]
    reason: str | None

    async def apply(self, tx: Any, now: float) -> Campaign:
        current = await tx.fetchval("SELECT status FROM campaigns WHERE id = $1", self.campaign_id)
        if current is None:
            raise NotFound(f"campaign_id: no campaign {self.campaign_id}")
        if current == self.status and self.status is not CampaignStatus.PAUSED:
            return from_row(Campaign, await tx.fetchrow("SELECT * FROM campaigns WHERE id = $1", self.campaign_id))
        if current not in self.allowed:
            raise Conflict(f"campaign {self.campaign_id} is {current}: it cannot become {self.status}")
        row = await tx.fetchrow(
            "UPDATE campaigns SET status = $2, reason = $3, updated_at = $4, "
            "started_at = CASE WHEN $2 = 'running' AND started_at IS NULL THEN $4 ELSE started_at END, "
            "finished_at = CASE WHEN $2 IN ('finished', 'cancelled') THEN $4 ELSE finished_at END "
            "WHERE id = $1 RETURNING *",
            self.campaign_id, str(self.status), self.reason, now,
        )
        return from_row(Campaign, row)


@attrs.frozen
class TakeCampaignLease:
    """Hold (or renew) the lease on a running campaign for ``ttl`` seconds; False when another
    node holds a lease that has not lapsed, or the campaign is not running."""

    campaign_id: int
    owner: str
    ttl: float

    async def apply(self, tx: Any, now: float) -> bool:
        row = await tx.fetchrow(
            "UPDATE campaigns SET owner = $2, lease_until = $3 WHERE id = $1 AND status = 'running' "
            "AND (owner IS NULL OR owner = $2 OR lease_until IS NULL OR lease_until < $4) RETURNING id",
            self.campaign_id, self.owner, now + self.ttl, now,
        )
        return row is not None


@attrs.frozen
class QueueRecipient:
    """``pending`` → ``queued`` on ``session_id`` (``cold``: the contact never wrote to it) — or
    ``skipped``/``opted_out`` when the tenant's opt-out list has the contact. Conflict when the
    recipient is no longer pending."""

    tenant_id: str
    recipient_id: int
    session_id: str
    cold: bool

    async def apply(self, tx: Any, now: float) -> Recipient:
        row = await tx.fetchrow("SELECT * FROM campaign_recipients WHERE id = $1", self.recipient_id)
        if row is None:
            raise NotFound(f"recipient_id: no recipient {self.recipient_id}")
        if row["state"] != "pending":
            raise Conflict(f"recipient {self.recipient_id} is {row['state']}, not pending")
        opted = await tx.fetchval(
            "SELECT 1 FROM campaign_optouts WHERE tenant_id = $1 AND jid = $2", self.tenant_id, row["jid"])
        if opted is not None:
            row = await tx.fetchrow(
                "UPDATE campaign_recipients SET state = 'skipped', skip_reason = 'opted_out', updated_at = $2 "
                "WHERE id = $1 RETURNING *", self.recipient_id, now)
        else:
            row = await tx.fetchrow(
                "UPDATE campaign_recipients SET state = 'queued', session_id = $2, cold = $3, queued_at = $4, "
                "updated_at = $4 WHERE id = $1 RETURNING *", self.recipient_id, self.session_id, int(self.cold), now)
        return from_row(Recipient, row)


@attrs.frozen
class FinishRecipient:
    """A queued recipient's outbox row ended: ``sent`` (at ``sent_at``) or ``failed`` (``error``).
    Returns False when it was not queued (already finished)."""

    recipient_id: int
    state: RecipientState
    outbox_id: int | None
    sent_at: float | None
    error: str | None

    async def apply(self, tx: Any, now: float) -> bool:
        row = await tx.fetchrow(
            "UPDATE campaign_recipients SET state = $2, outbox_id = $3, sent_at = $4, error = $5, updated_at = $6 "
            "WHERE id = $1 AND state = 'queued' RETURNING id",
            self.recipient_id, str(self.state), self.outbox_id, self.sent_at, self.error, now,
        )
        return row is not None


@attrs.frozen
class SkipRecipient:
    recipient_id: int
    reason: str

    async def apply(self, tx: Any, now: float) -> bool:
        row = await tx.fetchrow(
            "UPDATE campaign_recipients SET state = 'skipped', skip_reason = $2, updated_at = $3 "
            "WHERE id = $1 AND state = 'pending' RETURNING id", self.recipient_id, self.reason, now)
        return row is not None


@attrs.frozen
class ContactAnswered:
    """A contact wrote to a session: its sent campaign messages there count as replied, and, if
    ``stop_word`` is set (the message was one), it is on the tenant's opt-out list and skipped by
    every pending recipient of the tenant's campaigns. Returns the campaigns touched."""

    tenant_id: str
    session_id: str
    jid: str
    stop_word: str | None

    async def apply(self, tx: Any, now: float) -> list[int]:
        rows = await tx.fetch(
            "UPDATE campaign_recipients SET replied_at = $4 WHERE jid = $3 AND session_id = $2 AND state = 'sent' "
            "AND replied_at IS NULL AND campaign_id IN (SELECT id FROM campaigns WHERE tenant_id = $1) "
            "RETURNING campaign_id", self.tenant_id, self.session_id, self.jid, now)
        touched = {row["campaign_id"] for row in rows}
        if self.stop_word is not None:
            await tx.execute(
                "INSERT INTO campaign_optouts (tenant_id, jid, word, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (tenant_id, jid) DO NOTHING", self.tenant_id, self.jid, self.stop_word, now)
            rows = await tx.fetch(_SKIP_OPTED_OUT + "AND jid = $2 RETURNING campaign_id", self.tenant_id, self.jid, now)
            touched.update(row["campaign_id"] for row in rows)
        return sorted(touched)


class CampaignStore:
    """Campaign writes and reads; mixed into :class:`~actors.store.Store` (which provides
    ``_write``, ``_fetch`` and ``_one``)."""

    _write: Any
    _fetch: Any
    _one: Any

    async def create_campaign(
        self, tenant_id: str, name: str, *, template: dict, sessions: tuple[str, ...], schedule: dict,
        pacing: dict, recipients: tuple[NewRecipient, ...], timeout: float | None = None,
    ) -> Campaign:
        """A draft campaign with all its recipients, in one transaction. Raises NotFound for an
        unknown tenant."""
        if not sessions:
            raise InvalidInput("sessions: at least one session")
        op = CreateCampaign(tenant_id, name, template, tuple(sessions), schedule, pacing, tuple(recipients))
        return await self._write(op, timeout)

    async def set_campaign_status(
        self, campaign_id: int, status: CampaignStatus, *, allowed: tuple[CampaignStatus, ...],
        reason: str | None = None, timeout: float | None = None,
    ) -> Campaign:
        """Raises Conflict when the campaign is in none of ``allowed``, NotFound."""
        op = SetCampaignStatus(campaign_id, CampaignStatus(status), tuple(allowed), reason)
        return await self._write(op, timeout)

    async def take_campaign_lease(self, campaign_id: int, owner: str, ttl: float, *,
                                  timeout: float | None = None) -> bool:
        return await self._write(TakeCampaignLease(campaign_id, owner, float(ttl)), timeout)

    async def queue_recipient(self, tenant_id: str, recipient_id: int, session_id: str, *, cold: bool,
                              timeout: float | None = None) -> Recipient:
        return await self._write(QueueRecipient(tenant_id, recipient_id, session_id, bool(cold)), timeout)

    async def finish_recipient(self, recipient_id: int, state: RecipientState, *, outbox_id: int | None = None,
                               sent_at: float | None = None, error: str | None = None,
                               timeout: float | None = None) -> bool:
        op = FinishRecipient(recipient_id, RecipientState(state), outbox_id, sent_at, error)
        return await self._write(op, timeout)

    async def skip_recipient(self, recipient_id: int, reason: str, *, timeout: float | None = None) -> bool:
        return await self._write(SkipRecipient(recipient_id, reason), timeout)

    async def contact_answered(self, tenant_id: str, session_id: str, jid: str, *, stop_word: str | None,
                               timeout: float | None = None) -> list[int]:
        return await self._write(ContactAnswered(tenant_id, session_id, jid, stop_word), timeout)

    # -- reads ---------------------------------------------------------------------------------

    async def get_campaign(self, campaign_id: int) -> Campaign | None:
        return await self._one(Campaign, "SELECT * FROM campaigns WHERE id = $1", campaign_id)

    async def list_campaigns(self, tenant_id: str | None = None, *, limit: int = 100) -> list[Campaign]:
        """Newest first; every tenant's when ``tenant_id`` is None."""
        if tenant_id is None:
            rows = await self._fetch("SELECT * FROM campaigns ORDER BY id DESC LIMIT $1", check_limit(limit))
        else:
            rows = await self._fetch("SELECT * FROM campaigns WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                                     tenant_id, check_limit(limit))
        return [from_row(Campaign, row) for row in rows]

    async def running_campaigns(self) -> list[Campaign]:
        """Every running campaign (the drivers' candidates: each checks its lease)."""
        rows = await self._fetch("SELECT * FROM campaigns WHERE status = 'running' ORDER BY id")
        return [from_row(Campaign, row) for row in rows]

    async def list_recipients(
        self, campaign_id: int, *, states: tuple[RecipientState, ...] = (), after_position: int = -1,
        limit: int = 100,
    ) -> list[Recipient]:
        """In position order, paged with ``after_position``; only ``states`` when given."""
        where = ""
        if states:
            where = "AND state IN (" + ", ".join(f"'{RecipientState(s)}'" for s in states) + ") "
        rows = await self._fetch(
            f"SELECT * FROM campaign_recipients WHERE campaign_id = $1 AND position > $2 {where}"
            "ORDER BY position LIMIT $3", campaign_id, after_position, check_limit(limit))
        return [from_row(Recipient, row) for row in rows]

    async def campaign_counts(self, campaign_id: int) -> dict[str, int]:
        """Recipients per state, skip reason (``skipped:<reason>``) and delivery of the sent ones
        (``delivered``, ``read``: at least that far), plus ``replied``."""
        rows = await self._fetch(
            "SELECT r.state, r.skip_reason, o.delivery, COUNT(*) AS n, COUNT(r.replied_at) AS replied "
            "FROM campaign_recipients r LEFT JOIN outbox o ON o.id = r.outbox_id WHERE r.campaign_id = $1 "
            "GROUP BY r.state, r.skip_reason, o.delivery", campaign_id)
        counts = {str(state): 0 for state in RecipientState} | {"delivered": 0, "read": 0, "replied": 0}
        for row in rows:
            counts[row["state"]] += row["n"]
            counts["replied"] += row["replied"]
            if row["skip_reason"]:
                key = f"skipped:{row['skip_reason']}"
                counts[key] = counts.get(key, 0) + row["n"]
            if row["state"] == "sent" and row["delivery"] in ("delivered", "read", "played"):
                counts["delivered"] += row["n"]
                if row["delivery"] != "delivered":
                    counts["read"] += row["n"]
        return counts

    async def queued_outcomes(self, campaign_id: int) -> list[Outcome]:
        """The outbox rows of the campaign's queued recipients (by their keys)."""
        rows = await self._fetch(
            "SELECT r.id AS recipient_id, r.position, r.session_id, o.id AS outbox_id, o.status, o.last_error, "
            "o.updated_at FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id "
            "LEFT JOIN outbox o ON o.tenant_id = c.tenant_id "
            "AND o.idempotency_key = 'campaign:' || CAST(r.campaign_id AS TEXT) || ':' || CAST(r.position AS TEXT) "
            "WHERE r.campaign_id = $1 AND r.state = 'queued' ORDER BY r.position", campaign_id)
        return [from_row(Outcome, row) for row in rows]

    async def session_sends_since(self, session_id: str, since: float) -> tuple[int, int]:
        """Campaign messages queued on ``session_id`` since ``since`` (wall clock), every
        campaign's: (all of them, those to contacts who never wrote to it)."""
        rows = await self._fetch(
            "SELECT COUNT(*) AS n, COALESCE(SUM(cold), 0) AS cold FROM campaign_recipients "
            "WHERE session_id = $1 AND queued_at >= $2", session_id, since)
        return int(rows[0]["n"]), int(rows[0]["cold"])

    async def warm_contacts(self, campaign_id: int) -> set[tuple[str, str]]:
        """(jid, session) of the campaign's recipients who wrote to that session of the campaign before
        (they have a ticket there: tickets start with an inbound message; sends without a ticket, like
        campaigns', make none)."""
        rows = await self._fetch(
            "SELECT DISTINCT c.jid, t.session_id FROM campaigns k JOIN contacts c ON c.tenant_id = k.tenant_id "
            "JOIN tickets t ON t.contact_id = c.id WHERE k.id = $1 "
            "AND c.jid IN (SELECT jid FROM campaign_recipients WHERE campaign_id = $1)", campaign_id)
        return {(row["jid"], row["session_id"]) for row in rows}

    async def awaiting_reply(self, tenant_id: str, session_id: str, jid: str) -> bool:
        """Whether a campaign of the tenant sent the contact a message on the session it has not
        answered yet."""
        rows = await self._fetch(
            "SELECT 1 FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id WHERE r.jid = $1 "
            "AND r.session_id = $2 AND r.state = 'sent' AND r.replied_at IS NULL AND c.tenant_id = $3 LIMIT 1",
            jid, session_id, tenant_id)
        return bool(rows)

    async def campaign_tenants(self) -> set[str]:
        """Tenants that have campaigns."""
        return {row["tenant_id"] for row in await self._fetch("SELECT DISTINCT tenant_id FROM campaigns")}

    async def opted_out(self, tenant_id: str, jid: str) -> bool:
        rows = await self._fetch("SELECT 1 FROM campaign_optouts WHERE tenant_id = $1 AND jid = $2", tenant_id, jid)
        return bool(rows)
