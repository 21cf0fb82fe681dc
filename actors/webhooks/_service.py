"""The webhooks service: per-tenant subscriptions fed from the store's persistent queue.

What it does, once running (``await nursery.start(webhooks.run, system)``; in a node the actor
``/services/webhooks``):

* **Queueing**: :meth:`Webhooks.emit` (the hub's tap: every ``hub.emit`` of the flows, plus the
  status changes this service reads from the StatusBoard) writes one delivery row per subscribed
  webhook of the tenant (``webhook_deliveries``, status ``queued``). From then on a delivery
  survives restarts.
* **Delivering**: claims due rows (at most ``concurrency`` in flight), POSTs the JSON body signed
  with the webhook's secret (``X-Zapvisor-Signature: sha256=<hex>``), marks 2xx done. Anything
  else is a failed attempt: retried after ``backoff_initial * 2**(attempt-1)`` (5 s, 10 s, ...)
  until ``attempts`` are spent, then the row is dead (the dead letter), visible in the queue admin
  and replayable (:meth:`Webhooks.replay`).
* **Notifying**: HIGH/MEDIUM/LOW admin notifications (see ``_events``) to the tenant's
  ``notifications`` room and, when configured, POSTed to ``admin_notify_url`` (retried like a
  delivery, but in memory: an admin alert is about *now*).

Rows a dead process left ``running`` are queued again once they are ``stale_after`` seconds old
(checked at start and then periodically); a row claimed by another live node is never stolen
sooner.

Item isolation (DESIGN §10): a delivery that fails on its own content (a webhook URL or secret
that cannot be encoded, a body that cannot be built) is quarantined — dead at once, its
``last_error`` starting with ``quarantined:`` — and an admin notification that cannot be sent is
dropped with its error logged and counted (``notifications_failed``); one bad status change is
logged and skipped. None of them stops the service.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
from typing import Any, Callable

import attrs
import trio

from actors.hub import Room
from actors.store import QUARANTINED, Queue, StoreError, WebhookDelivery, storable_text, webhook_wants

from ._errors import DeliveryNotFound, InvalidWebhookEvent
from ._events import EVENT_NOTIFY, Notification, Severity, check_event, status_events, status_notification
from ._http import HttpPoster, PostFailed, Poster
from ._targets import TargetPolicy, check_notify_url, target_policy
from ._sign import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign

_LOG = logging.getLogger("zapvisor.webhooks")

#: Seconds between looks at the queue when nothing woke the dispatcher (rows queued by another
#: node, retries scheduled before a restart): short enough to keep latency low, cheap for the store.
POLL_INTERVAL = 1.0

#: Seconds one POST may take (connect + answer) before it counts as a failed attempt.
REQUEST_TIMEOUT = 10.0

#: A ``running`` row older than this belonged to a process that died: 3 request timeouts, so a
#: live node's slow delivery is never taken from it.
STALE_AFTER = 3 * REQUEST_TIMEOUT

#: Events accepted by emit() but not yet written to the store: a burst of status changes and
#: messages of a busy node; beyond it events are dropped for the webhooks (counted, logged).
PENDING_CAPACITY = 10_000

#: Seconds a tenant's cached subscriptions are trusted (webhooks changed on another node).
SUBSCRIPTIONS_TTL = 5.0

#: Admin notifications waiting to be POSTed: alerts come in small bursts (a node-wide outage).
NOTIFY_CAPACITY = 1_000

#: A quarantined delivery's recorded error is cut to this (an exception's message may quote the content).
MAX_ERROR_CHARS = 2000


def _quarantine_reason(exc: Exception) -> str:
    return storable_text(f"{QUARANTINED}: {type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]


@attrs.define(eq=False)
class Webhooks:
    """Webhook deliveries and admin notifications (see the module docstring).

    ``targets`` is the webhook target policy (registration checks URLs with it, the default
    poster checks every resolved address with it); ``admin_notify_url`` must pass it too
    (``config.ConfigError`` naming ``webhooks.admin_notify_url`` otherwise).
    ``poster`` defaults to a real :class:`HttpPoster`; ``board`` (StatusBoard) and ``hub`` (Hub)
    are optional feeds/outlets. ``store.clock`` is the time base of ``next_attempt_at``.
    ``store_gate`` (the node's store gate, optional) is where the start waits while the store is
    stopped or unreachable.
    """

    store: Any
    attempts: int = 3
    backoff_initial: float = 5.0
    concurrency: int = 5
    admin_notify_url: str | None = None
    board: Any = None
    hub: Any = None
    poster: Poster | None = None
    store_gate: Any = None
    targets: TargetPolicy = attrs.field(factory=TargetPolicy)
    poll_interval: float = POLL_INTERVAL
    request_timeout: float = REQUEST_TIMEOUT
    stale_after: float = STALE_AFTER
    wall_clock: Callable[[float], float] = lambda t: t
    _pending: tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel] = attrs.field(
        init=False, factory=lambda: trio.open_memory_channel(PENDING_CAPACITY)
    )
    _alerts: tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel] = attrs.field(
        init=False, factory=lambda: trio.open_memory_channel(NOTIFY_CAPACITY)
    )
    _wake: trio.Event = attrs.field(init=False, factory=trio.Event)
    _retries: list[float] = attrs.field(init=False, factory=list)  # trio times of scheduled retries
    _in_flight: int = attrs.field(init=False, default=0)
    _subscribed: dict[str, tuple[float, frozenset[str]]] = attrs.field(init=False, factory=dict)
    stats: collections.Counter = attrs.field(init=False, factory=collections.Counter)

    def __attrs_post_init__(self) -> None:
        for name in ("attempts", "concurrency"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)!r}")
        if not self.backoff_initial > 0:
            raise ValueError(f"backoff_initial: must be > 0 seconds, got {self.backoff_initial!r}")
        if not self.stale_after > self.request_timeout > 0:
            raise ValueError(f"stale_after: must exceed request_timeout ({self.request_timeout!r} s) so a live "
                             f"delivery is never taken back, got {self.stale_after!r}")
        check_notify_url(self.targets, self.admin_notify_url)

    @classmethod
    def from_settings(cls, settings: Any, store: Any, *, api: Any = None, **options: Any) -> Webhooks:
        """From a ``[webhooks]`` settings section (attempts, backoff_initial, concurrency, admin_notify_url,
        allow_targets); ``api`` (the ``[api]`` section) names the daemon's own address, never a target."""
        targets = TargetPolicy.from_settings(settings.allow_targets) if api is None else target_policy(settings, api)
        return cls(store, settings.attempts, settings.backoff_initial, settings.concurrency,
                   settings.admin_notify_url, targets=targets, **options)

    def backoff(self, attempt: int) -> float:
        """Seconds before the attempt after failed attempt number ``attempt`` (1-based)."""
        return self.backoff_initial * 2 ** (attempt - 1)

    # -- input ----------------------------------------------------------------------------

    def emit(self, tenant_id: str, event: str, payload: dict) -> None:
        """Queue ``event`` for the tenant's webhooks subscribed to it. Never blocks (the hub's tap).

        The row is written shortly after by the service; ``remove.instance`` also notifies the
        admins (LOW).

        Raises:
            InvalidWebhookEvent: bad event name or a payload that is not a JSON object.
        """
        check_event(event)
        if not isinstance(payload, dict):
            raise InvalidWebhookEvent(f"payload: must be a JSON object, got {type(payload).__name__}")
        subscribed = self._fresh_subscriptions(tenant_id)
        if subscribed is not None and not webhook_wants(subscribed, event):
            self.stats["unsubscribed"] += 1  # known unwanted: not even queued
        else:
            self._queue(tenant_id, event, payload)
        if event in EVENT_NOTIFY:
            kind, severity = EVENT_NOTIFY[event]
            self.notify(tenant_id, str(payload.get("session_id", "")), kind, severity, str(payload.get("reason", "")))

    def _queue(self, tenant_id: str, event: str, payload: dict) -> None:
        try:
            self._pending[0].send_nowait((tenant_id, event, payload))
        except trio.WouldBlock:
            self.stats["dropped"] += 1
            _LOG.warning("webhooks: %s for tenant %s dropped: the store is not keeping up", event, tenant_id)

    def notify(
        self, tenant_id: str, instance: str, event_type: str, severity: Severity, reason: str = ""
    ) -> Notification:
        """Tell the admins: the tenant's ``notifications`` room now, ``admin_notify_url`` soon. Never blocks."""
        note = Notification(event_type, Severity(severity), tenant_id, instance, reason,
                            self.wall_clock(trio.current_time()))
        if self.hub is not None:
            self.hub.publish(Room.notifications(tenant_id), f"notification.{note.severity.lower()}", note.to_dict())
        if self.admin_notify_url is not None:
            try:
                self._alerts[0].send_nowait(note)
            except trio.WouldBlock:
                self.stats["notifications_dropped"] += 1
        self.stats["notifications"] += 1
        return note

    async def replay(self, delivery_id: int) -> WebhookDelivery:
        """Queue a dead (or waiting) delivery again now, with a fresh attempt count.

        Raises:
            DeliveryNotFound: no such delivery. actors.store.Conflict: it is running or done.
        """
        if await self.store.get_job(Queue.WEBHOOKS, delivery_id) is None:
            raise DeliveryNotFound(f"delivery_id: no webhook delivery {delivery_id}")
        job = await self.store.retry_job(Queue.WEBHOOKS, delivery_id)
        self._wake.set()
        return job

    def subscriptions_changed(self, tenant_id: str) -> None:
        """The tenant's webhooks changed on this node: read them again before the next event."""
        self._subscribed.pop(tenant_id, None)

    async def _wanted(self, tenant_id: str, event: str) -> bool:
        """Does any active webhook of the tenant want ``event``? (cached per tenant)

        Most events (every ``message.created``) belong to tenants with no webhook
        for them; asking the cache instead of queueing a store write for each keeps
        the webhooks off the message path. Changes made on this node invalidate it
        at once (:meth:`subscriptions_changed`); changes made on another node are
        seen within SUBSCRIPTIONS_TTL.
        """
        subscribed = self._fresh_subscriptions(tenant_id)
        if subscribed is None:
            hooks = await self.store.list_webhooks(tenant_id)
            subscribed = frozenset(e for hook in hooks if hook.active for e in hook.events)
            self._subscribed[tenant_id] = (trio.current_time(), subscribed)
        return webhook_wants(subscribed, event)

    def _fresh_subscriptions(self, tenant_id: str) -> frozenset[str] | None:
        """The events the tenant's webhooks want, if cached within SUBSCRIPTIONS_TTL."""
        cached = self._subscribed.get(tenant_id)
        if cached is None or trio.current_time() - cached[0] > SUBSCRIPTIONS_TTL:
            return None
        return cached[1]

    def statistics(self) -> dict[str, int]:
        return {"in_flight": self._in_flight, **self.stats}

    # -- running --------------------------------------------------------------------------

    async def run(
        self, system: Any = None, *, task_status: trio.TaskStatus[Webhooks] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Queue, deliver and notify until cancelled; reports started once the tap is in place.

        The first queue recovery waits at ``store_gate`` while the store is stopped or unreachable
        (a start that failed instead would spend its supervisors' restart intensity on the outage);
        without a gate it raises StoreError (the actor is then restarted by its supervisor).
        """
        if system is not None:
            self.wall_clock = system.wall_time
        recover = functools.partial(self.store.recover_running, Queue.WEBHOOKS, stale_after=self.stale_after)
        await (recover() if self.store_gate is None else self.store_gate.call(recover))
        async with contextlib.AsyncExitStack() as stack:
            if self.poster is None:  # ours for this run only: a restarted actor opens a new one
                self.poster = await stack.enter_async_context(HttpPoster(self.request_timeout, self.targets))
                stack.callback(setattr, self, "poster", None)  # not the closed one next run
            nursery = await stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(self._write_pending)
            nursery.start_soon(self._dispatch)
            nursery.start_soon(self._recover_stale)
            nursery.start_soon(self._post_alerts)
            if self.board is not None:
                nursery.start_soon(self._feed_board, self.board.subscribe())  # subscribed before started
            if self.hub is not None:
                self.hub.add_tap(self.emit)
                stack.callback(self.hub.remove_tap, self.emit)
            task_status.started(self)
            await trio.sleep_forever()

    async def _write_pending(self) -> None:
        async for tenant_id, event, payload in self._pending[1]:
            try:
                if not await self._wanted(tenant_id, event):
                    self.stats["unsubscribed"] += 1
                    continue
                deliveries = await self.store.enqueue_webhook_event(tenant_id, event, payload)
            except StoreError as error:
                self.stats["enqueue_failed"] += 1
                _LOG.error("webhooks: %s for tenant %s not queued: %s", event, tenant_id, error)
                continue
            if deliveries:
                self.stats["queued"] += len(deliveries)
                self._wake.set()

    async def _dispatch(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                claimed = []
                if self._in_flight < self.concurrency:
                    try:
                        claimed = await self.store.claim_jobs(Queue.WEBHOOKS, limit=self.concurrency - self._in_flight)
                    except StoreError as error:
                        _LOG.warning("webhooks: claiming deliveries failed: %s", error)
                for job in claimed:
                    self._in_flight += 1
                    nursery.start_soon(self._deliver, job)
                if not claimed or self._in_flight >= self.concurrency:
                    await self._sleep()

    async def _sleep(self) -> None:
        """Until woken (new rows, a finished delivery, a replay), the next scheduled retry, or the poll."""
        now = trio.current_time()
        self._retries = [t for t in self._retries if t > now]
        delay = min([self.poll_interval, *(t - now for t in self._retries)])
        with trio.move_on_after(delay):
            await self._wake.wait()
        self._wake = trio.Event()

    async def _deliver(self, job: WebhookDelivery) -> None:
        try:
            try:
                error = await self._attempt(job)
            except StoreError:
                raise
            except Exception as exc:  # the item boundary: this delivery's content, not the service
                error = _quarantine_reason(exc)
                await self.store.job_failed(Queue.WEBHOOKS, job.id, error, retry_at=None)
                self.stats["quarantined"] += 1
                _LOG.error("webhooks: delivery %d (%s) %s", job.id, job.event, error)
                return
            if error is None:
                await self.store.job_done(Queue.WEBHOOKS, job.id)
                self.stats["delivered"] += 1
            elif job.attempts >= self.attempts:
                await self.store.job_failed(Queue.WEBHOOKS, job.id, error, retry_at=None)
                self.stats["dead"] += 1
                _LOG.warning("webhooks: delivery %d (%s) dead after %d attempts: %s",
                             job.id, job.event, job.attempts, error)
            else:
                delay = self.backoff(job.attempts)
                retry_at, wake_at = self.store.clock() + delay, trio.current_time() + delay
                await self.store.job_failed(Queue.WEBHOOKS, job.id, error, retry_at=retry_at)
                self._retries.append(wake_at)
                self.stats["retried"] += 1
        except StoreError as error:  # the row stays running; stale recovery queues it again
            _LOG.warning("webhooks: delivery %d outcome not recorded: %s", job.id, error)
        finally:
            self._in_flight -= 1
            self._wake.set()

    async def _attempt(self, job: WebhookDelivery) -> str | None:
        """POST one delivery; None when the receiver took it (2xx), else why not."""
        hook = next((w for w in await self.store.list_webhooks(job.tenant_id) if w.id == job.webhook_id), None)
        if hook is None or not hook.active:
            return "webhook deleted or inactive"
        body = json.dumps({
            "id": job.id, "event": job.event, "tenant_id": job.tenant_id, "payload": job.payload,
            "created_at": job.created_at, "attempt": job.attempts,
        }, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", EVENT_HEADER: job.event, DELIVERY_HEADER: str(job.id)}
        if hook.secret:
            headers[SIGNATURE_HEADER] = sign(hook.secret, body)
        return await self._post(hook.url, body, headers)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        try:
            with trio.fail_after(self.request_timeout):
                status = await self.poster(url, body, headers)
        except PostFailed as error:
            return str(error)
        except trio.TooSlowError:
            return f"no answer within {self.request_timeout} s"
        return None if 200 <= status < 300 else f"HTTP {status}"

    async def _recover_stale(self) -> None:
        while True:
            await trio.sleep(self.stale_after)
            try:
                if await self.store.recover_running(Queue.WEBHOOKS, stale_after=self.stale_after):
                    self._wake.set()
            except StoreError as error:
                _LOG.warning("webhooks: stale delivery recovery failed: %s", error)

    async def _post_alerts(self) -> None:
        async for note in self._alerts[1]:
            try:
                error = await self._post_alert(note)
            except Exception as exc:  # the item boundary: this notification's content, not the service
                error = _quarantine_reason(exc)
            if error is not None:
                self.stats["notifications_failed"] += 1
                _LOG.error("webhooks: admin notification %s for %s/%s lost: %s", note.event_type, note.tenant_id,
                           note.instance, error)

    async def _post_alert(self, note: Notification) -> str | None:
        """POST one admin notification with its retries; None once sent, else the last error."""
        body = json.dumps(note.to_dict(), separators=(",", ":")).encode()
        for attempt in range(1, self.attempts + 1):
            error = await self._post(self.admin_notify_url, body, {"Content-Type": "application/json"})
            if error is None:
                self.stats["notifications_sent"] += 1
                return None
            if attempt < self.attempts:
                await trio.sleep(self.backoff(attempt))
        return f"not sent after {self.attempts} attempts: {error}"

    async def _feed_board(self, updates: trio.MemoryReceiveChannel) -> None:
        while True:
            async with updates:
                async for info in updates:
                    try:
                        self.status_changed(info)
                    except Exception as exc:  # the item boundary: one bad status change, not the service
                        self.stats["status_failed"] += 1
                        _LOG.error("webhooks: status change of %s skipped: %s", getattr(info, "session_id", "?"),
                                   _quarantine_reason(exc))
            _LOG.warning("webhooks: fell behind the status board; resubscribed")
            updates = self.board.subscribe()

    def status_changed(self, info: Any) -> None:
        """One StatusBoard change (a SessionInfo): its webhook events and admin notification."""
        payload = info.to_dict()
        status = payload["status"] = str(info.status)
        for event in status_events(status, bool(info.qr)):
            self.emit(info.tenant_id, event, payload)
        notification = status_notification(status)
        if notification is not None:
            self.notify(info.tenant_id, info.session_id, *notification, info.reason)


