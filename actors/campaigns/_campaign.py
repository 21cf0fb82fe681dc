"""The :class:`CampaignActor`: one running campaign, ``/tenants/<tenant>/campaigns/<id>``.

The store is the campaign's memory; the actor only drives it. At start it reads the recipients
still ``pending`` or ``queued`` and runs one *lane* per session of the campaign; lanes take the next
pending recipient in turn (sessions rotate by availability). For each send a lane:

1. takes the session's turn (:class:`SessionPacer`: every campaign on the session shares it) and
   waits out the pacing delay drawn after the session's previous campaign send;
2. checks the session (connected? else it waits, degraded included), the schedule window and
   the session's daily caps (all campaign messages; those to contacts who never wrote to it);
3. marks the recipient ``queued`` (the store skips it as ``opted_out`` if the contact opted out),
   then writes its outbox row, keyed ``campaign:<id>:<position>``, and wakes the session's outbox
   sender over the bus (:data:`~actors.outbox.WAKE_CHANNEL`);
4. waits for that outbox row's outcome and records it (sent, failed; a send of unknown outcome is
   ``failed`` with an ``unknown:`` error — WhatsApp may have it, it is never sent again).

**Exactly once.** The recipient is ``queued`` before its outbox row can exist, and the row's key is
the recipient's, so after a kill -9 (or on the node that takes the campaign over) the lanes first
settle the recipients left ``queued``: an existing row is waited for, a missing one is made with the
same key (the store returns the first row if it did exist after all). The outbox sends each row at
most once. A lane's first send after a start waits a full pacing delay: the previous life's last send
may have been just before the kill.

**Agents first.** A lane hands the outbox one send at a time per session and waits for its outcome
before the next, so an agent's reply on the same session is behind at most one campaign message
(the outbox sends a session's rows in order): campaign backlogs stay in the campaign, never in the
outbox. Campaign rows are written to the store directly, never through the outbox actor's mailbox,
where an agent's send would queue behind twenty lanes' sends.

**Pauses.** The actor pauses its campaign (``status`` paused, ``reason`` says why) when a session
of it is banned, logged out or otherwise parked (:data:`PARKED`), or after ``failure_threshold``
failed sends in a row. A pause or cancel by request (any node) is seen at the next tick: the actor
stops (:class:`~supervisor.Shutdown`, not restarted) and whatever it was doing is settled by the
next start, as after a crash.

**Several nodes.** The actor renews its node's lease on the campaign every tick; a node that loses
it (it was partitioned past ``lease_ttl`` and another took over) stops at once.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

import attrs
import trio

from actors.bus import BusUnavailable
from actors.flows import Publisher, no_publisher
from actors.outbox import WAKE_CHANNEL
from actors.store import (
    Campaign,
    CampaignStatus,
    Conflict,
    InvalidInput,
    Outcome,
    Queue,
    Recipient,
    RecipientState,
    Store,
    WriteFailed,
    outbox_key,
)
from supervisor import Actor, Shutdown

from ._messages import Halt
from ._policy import Pacing, Schedule, render

_LOG = logging.getLogger("zapvisor.campaigns")

CAMPAIGN_UPDATED = "campaign.updated"
"""Event (websocket ``tenant:<id>`` room and webhooks) carrying a campaign's status and progress."""

PARKED = frozenset({"banned", "logged_out", "needs_auth", "replaced", "outdated"})
"""Session statuses that pause a campaign using the session: the number needs time or a human."""

SENDING = frozenset({"connected"})
"""Session statuses in which a lane sends; in any other (degraded included: connected, but probes
fail) it waits, while agents' replies still go out through the outbox."""

UNKNOWN = "unknown"
"""Prefix of a recipient's error when its send's outcome is unknown (WhatsApp may have it)."""

OUTCOME_POLL = (0.01, 0.5)
"""First and longest pause between two looks at a send's outbox row (doubling in between)."""

WAIT_SLICE = 5.0
"""Longest wait of a lane before it looks again (the window, the caps, the session, whether other
lanes sent everything meanwhile): clocks move and days change."""

_Outcome = tuple[str, int | None, float | None, str | None]
"""A send's end: recipient state (sent, failed), outbox row id, sent at, error."""


@attrs.define(eq=False)
class SessionPacer:
    """When each session may send its next campaign message, on this node: one turn at a time per
    session whatever the campaign, and the delay drawn after each send."""

    _locks: dict[str, trio.Lock] = attrs.field(factory=dict)
    _next: dict[str, float] = attrs.field(factory=dict)  # trio time

    def turn(self, session_id: str) -> trio.Lock:
        return self._locks.setdefault(session_id, trio.Lock())

    def next_at(self, session_id: str, first_delay: float) -> float:
        """When the session may send; the first ask (a start) is ``first_delay`` from now."""
        return self._next.setdefault(session_id, trio.current_time() + first_delay)

    def sent(self, session_id: str, delay: float) -> None:
        self._next[session_id] = trio.current_time() + delay


@attrs.define(eq=False)
class CampaignDeps:
    store: Store
    settings: Any  # config.CampaignsSettings: the defaults of the policies
    node_id: str
    bus: Any  # the node's Bus: wakes the outbox sender of a session (WAKE_CHANNEL)
    publisher: Publisher = no_publisher
    pacer: SessionPacer = attrs.field(factory=SessionPacer)
    tick: float = 1.0  # lease renewal, status look-ups, progress events


def progress_payload(campaign: Campaign, counts: dict[str, int], lanes: dict[str, str] | None = None) -> dict:
    payload = {"id": campaign.id, "name": campaign.name, "status": str(campaign.status), "reason": campaign.reason,
               "total": campaign.total, "counts": counts}
    if lanes is not None:
        payload["lanes"] = dict(lanes)
    return payload


class CampaignActor(Actor):
    """See the module docstring."""

    def __init__(self, campaign_id: int, deps: CampaignDeps) -> None:
        self.campaign_id = campaign_id
        self.deps = deps
        self._pending: collections.deque[Recipient] = collections.deque()
        self._warm: set[tuple[str, str]] = set()  # (jid, session): the contact wrote to the session
        self._lanes: dict[str, str] = {}  # session -> what its lane is doing (progress events)
        self._failures = 0  # failed sends in a row
        self._dirty = True
        self._scope = trio.CancelScope()

    async def on_start(self) -> None:
        self.ctx.nursery.start_soon(self._main)

    async def receive(self, message: Any) -> Any:
        match message:
            case Halt():
                self._scope.cancel()
                return None
        raise TypeError(f"campaign actor got an unknown message {message!r}")

    # -- the whole run ------------------------------------------------------------------

    async def _main(self) -> None:
        store = self.deps.store
        campaign = await store.get_campaign(self.campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.RUNNING:
            raise Shutdown(f"campaign {self.campaign_id} is not running")
        self.campaign = campaign
        self.pacing = Pacing.from_document(campaign.pacing, self.deps.settings)
        self.schedule = Schedule.from_document(campaign.schedule, self.deps.settings.timezone)
        leftovers = await self._load()
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ticker)
                async with trio.open_nursery() as lanes:
                    for session_id in campaign.sessions:
                        lanes.start_soon(self._lane, session_id, leftovers.get(session_id, []))
                nursery.cancel_scope.cancel()
            await self._finish()
        self.campaign = await self.deps.store.get_campaign(self.campaign_id) or self.campaign
        self._emit(await self.deps.store.campaign_counts(self.campaign_id))
        raise Shutdown(f"campaign {self.campaign_id} stopped")

    async def _load(self) -> dict[str, list[Outcome]]:
        """The pending recipients (kept in order) and, per session, the queued ones to settle first."""
        store, after = self.deps.store, -1
        while page := await store.list_recipients(self.campaign_id, states=(RecipientState.PENDING,),
                                                  after_position=after, limit=1000):
            self._pending.extend(page)
            after = page[-1].position
        self._warm = await store.warm_contacts(self.campaign_id)
        leftovers: dict[str, list[Outcome]] = {}
        for outcome in await store.queued_outcomes(self.campaign_id):
            leftovers.setdefault(outcome.session_id, []).append(outcome)
        return leftovers

    async def _finish(self) -> None:
        """Every lane is done: finished, unless something is still pending (then the next start goes on)."""
        counts = await self.deps.store.campaign_counts(self.campaign_id)
        if counts["pending"] or counts["queued"]:
            return
        await self._leave(CampaignStatus.FINISHED, None)
        _LOG.info("campaign %s finished: %s", self.campaign_id, counts)

    async def _pause(self, reason: str) -> None:
        _LOG.warning("campaign %s paused: %s", self.campaign_id, reason)
        await self._leave(CampaignStatus.PAUSED, reason)
        self._scope.cancel()

    async def _leave(self, status: CampaignStatus, reason: str | None) -> None:
        """``running`` → ``status``; a campaign paused or cancelled by request meanwhile stays so."""
        try:
            await self.deps.store.set_campaign_status(self.campaign_id, status, allowed=(CampaignStatus.RUNNING,),
                                                      reason=reason)
        except Conflict:
            pass

    async def _ticker(self) -> None:
        """Hold the lease, watch the status and the sessions, announce progress."""
        store, settings = self.deps.store, self.deps.settings
        period = min(self.deps.tick, settings.lease_ttl / 3)
        while True:
            if not await store.take_campaign_lease(self.campaign_id, self.deps.node_id, settings.lease_ttl):
                self.campaign = await store.get_campaign(self.campaign_id) or self.campaign
                _LOG.info("campaign %s: no longer running here (%s)", self.campaign_id, self.campaign.status)
                self._scope.cancel()
                return
            for session_id in self.campaign.sessions:
                record = await store.get_session(session_id)
                if record is not None and record.status in PARKED:
                    await self._pause(f"session {session_id} is {record.status}: {record.reason or 'no reason given'}")
                    return
            if self._dirty:
                self._dirty = False
                self._emit(await store.campaign_counts(self.campaign_id))
            await trio.sleep(period)

    def _emit(self, counts: dict[str, int] | None = None) -> None:
        payload = progress_payload(self.campaign, counts or {}, self._lanes)
        if counts is None:
            payload.pop("counts")
        self.deps.publisher.emit(self.campaign.tenant_id, CAMPAIGN_UPDATED, payload)

    # -- one session's lane -------------------------------------------------------------

    async def _lane(self, session_id: str, leftovers: list[Outcome]) -> None:
        for outcome in leftovers:
            await self._settle(session_id, outcome)
        while self._pending:
            async with self.deps.pacer.turn(session_id):
                await self._paced(session_id)
                if not await self._ready(session_id) or not self._pending:  # another lane took the last
                    continue
                recipient = self._take(session_id, cold=await self._cold_allowed(session_id))
                if recipient is None:
                    await self._wait("cold-contact cap reached", session_id, self.schedule.next_day(self._now()))
                    continue
                cold = (recipient.jid, session_id) not in self._warm
                queued = await self.deps.store.queue_recipient(self.campaign.tenant_id, recipient.id, session_id,
                                                               cold=cold)
                self._dirty = True
                if queued.state is RecipientState.QUEUED:
                    await self._send(session_id, queued.position, queued.jid, queued.variables, queued.id)
        self._lanes[session_id] = "done"

    async def _cold_allowed(self, session_id: str) -> bool:
        """Whether the session may still write today to a contact who never wrote to it."""
        _, cold_sent = await self.deps.store.session_sends_since(session_id, self.schedule.day_start(self._now()))
        return cold_sent < self.pacing.cold_daily_cap

    def _take(self, session_id: str, *, cold: bool) -> Recipient | None:
        """The next pending recipient; past the cold cap, the next one who wrote to this session (the
        cold ones stay for other sessions, or tomorrow)."""
        if cold:
            return self._pending.popleft()
        for index, recipient in enumerate(self._pending):
            if (recipient.jid, session_id) in self._warm:
                del self._pending[index]
                return recipient
        return None

    async def _settle(self, session_id: str, outcome: Outcome) -> None:
        """A recipient a previous life left ``queued``: wait for its row, or make it (same key)."""
        if outcome.status is None:
            recipient = (await self.deps.store.list_recipients(
                self.campaign_id, after_position=outcome.position - 1, limit=1))[0]
            async with self.deps.pacer.turn(session_id):
                await self._paced(session_id)
                await self._send(session_id, recipient.position, recipient.jid, recipient.variables, recipient.id)
            return
        await self._record(outcome.recipient_id, await self._outcome(outcome.outbox_id))

    async def _paced(self, session_id: str) -> None:
        low, high = self.pacing.delay
        at = self.deps.pacer.next_at(session_id, self.ctx.system.rng.uniform(low, high))
        self._lanes[session_id] = "pacing"
        await trio.sleep_until(at)

    async def _ready(self, session_id: str) -> bool:
        """Whether the lane may send now; if not, it waited for a reason (and the caller asks again)."""
        record = await self.deps.store.get_session(session_id)
        if record is None or record.status not in SENDING:
            await self._wait(f"session {record.status if record else 'unknown'}", session_id,
                             self._now() + self.deps.tick)
            return False
        now = self._now()
        opens = self.schedule.next_open(now)
        if opens > now:
            await self._wait("outside the schedule window", session_id, opens)
            return False
        sent, _ = await self.deps.store.session_sends_since(session_id, self.schedule.day_start(now))
        if sent >= self.pacing.daily_cap:
            await self._wait("daily cap reached", session_id, self.schedule.next_day(now))
            return False
        self._lanes[session_id] = "sending"
        return True

    async def _wait(self, why: str, session_id: str, until: float) -> None:
        """Wait until wall-clock ``until``, at most :data:`WAIT_SLICE` (the lane then checks again)."""
        self._lanes[session_id] = f"waiting: {why}"
        self._dirty = True
        await trio.sleep(min(max(until - self._now(), 0.0), WAIT_SLICE))

    def _now(self) -> float:
        return self.ctx.system.wall_time(trio.current_time())

    # -- one send -----------------------------------------------------------------------

    async def _send(self, session_id: str, position: int, jid: str, variables: dict, recipient_id: int) -> None:
        """Write the recipient's outbox row (the store's idempotency key makes a repeat return the first
        row) and wake the session's sender over the bus, as a send from another node does: campaign rows
        never queue in the outbox actor's mailbox, where agents' sends would wait behind them."""
        template = self.campaign.template
        payload = {"text": render(str(template.get("text", "")), variables)}
        if template.get("media") is not None:
            payload["media"] = template["media"]  # a MediaFile as a dict: what the outbox keeps
        try:
            enqueued = await self.deps.store.enqueue_outbox(
                self.campaign.tenant_id, session_id, outbox_key(self.campaign_id, position), jid, payload)
        except (InvalidInput, WriteFailed) as exc:
            await self._record(recipient_id, ("failed", None, None, f"refused by the outbox: {exc}"))
            return
        if enqueued.created:
            try:
                await self.deps.bus.publish(WAKE_CHANNEL, {"session_id": session_id})
            except BusUnavailable as exc:  # the sender finds the row at its next poll
                _LOG.warning("campaign %s: wake-up of session %s lost: %s", self.campaign_id, session_id, exc)
        await self._record(recipient_id, await self._outcome(enqueued.item.id))
        low, high = self.pacing.delay
        self.deps.pacer.sent(session_id, self.ctx.system.rng.uniform(low, high))

    async def _outcome(self, outbox_id: int) -> _Outcome:
        """Wait for the outbox row to end: (``sent``/``failed``, the row, its time, its error)."""
        pause, longest = OUTCOME_POLL
        while True:
            item = await self.deps.store.get_job(Queue.OUTBOX, outbox_id)
            if item is None:
                return "failed", None, None, "its outbox row was removed by an administrator"
            match str(item.status):
                case "done":
                    return "sent", item.id, item.updated_at, None
                case "dead":
                    return "failed", item.id, None, item.last_error
                case "unknown":
                    why = f"{UNKNOWN}: {item.last_error} (WhatsApp may have it; never sent again)"
                    return "failed", item.id, None, why
            await trio.sleep(pause)
            pause = min(pause * 2, longest)

    async def _record(self, recipient_id: int, outcome: _Outcome) -> None:
        state, item_id, sent_at, error = outcome
        await self.deps.store.finish_recipient(recipient_id, RecipientState(state), outbox_id=item_id,
                                               sent_at=sent_at, error=error)
        self._dirty = True
        if state == "sent" or (error or "").startswith(UNKNOWN):
            self._failures = 0
            return
        self._failures += 1
        if self._failures >= self.pacing.failure_threshold:
            await self._pause(f"{self._failures} sends failed in a row; the last: {error}")
