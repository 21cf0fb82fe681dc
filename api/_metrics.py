"""``/metrics`` in the Prometheus text format (version 0.0.4), rendered by ``prometheus_client``.

Two kinds of figures:

- **Counted as they happen** (exact, since this process started, as Prometheus counters are):
  messages received from WhatsApp and messages sent to it. A hub tap (:class:`MessageCounters`,
  installed when the blueprint is registered on an app) counts every ``message.created`` of an
  inbound message and every outbox item reaching ``done``, on the node where it happened.
- **The janitor's counters** (rows and files deleted by kind, runs, errors, the last run's duration),
  accumulated by :class:`actors.lifecycle.Sweeper` on the node that ran it.
- **Read at scrape time** from snapshots (tree, board, statistics) and two cheap store counts:
  sessions by status, restarts, breakers, mailboxes, messages stored, outbox depth, websocket
  clients, store latency, the session pool. Nothing is accumulated for these, so a scrape has
  no side effects.
"""

from __future__ import annotations

from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Blueprint, Response, current_app

from actors.store import JobStatus, Queue
from supervisor import BreakerMode

from ._routing import Auth, endpoint, state

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The format ``generate_latest`` writes (the classic text exposition, which every scraper reads)."""
EXTENSION = "zapvisor.metrics"
"""Where an app keeps its :class:`MessageCounters` (``app.extensions``)."""
BREAKER_MODES = tuple(mode.value for mode in BreakerMode)
OUTBOX_PENDING_CAP = 1000
"""Outbox depth is counted up to the store's largest page: beyond that the exact figure matters less
than the alarm, and the scrape stays cheap."""


@attrs.define(eq=False)
class _Snapshot(Collector):
    """The families read at scrape time: set just before ``generate_latest`` (no await between)."""

    families: list[Metric] = attrs.field(factory=list)

    def collect(self) -> list[Metric]:
        return self.families


@attrs.define(eq=False)
class MessageCounters:
    """The exact counters of one app, fed by a hub tap (it must not block: it only increments)."""

    registry: CollectorRegistry = attrs.field(factory=lambda: CollectorRegistry(auto_describe=False))
    snapshot: _Snapshot = attrs.field(factory=_Snapshot)
    received: Counter = attrs.field(init=False)
    sent: Counter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.received = Counter("zapvisor_messages_received", "Messages received from WhatsApp and stored "
                                "(since this process started).", registry=self.registry)
        self.sent = Counter("zapvisor_messages_sent", "Outbox items sent to WhatsApp (since this process "
                            "started).", registry=self.registry)
        self.registry.register(self.snapshot)

    def tap(self, tenant_id: str, event_type: str, payload: dict) -> None:
        """A hub tap: count inbound ``message.created`` events and outbox items that are ``done``."""
        if event_type == "message.created" and payload.get("from_me") is False:
            self.received.inc()
        elif event_type == "outbox.updated" and payload.get("status") == str(JobStatus.DONE):
            self.sent.inc()

    def render(self, families: list[Metric]) -> bytes:
        self.snapshot.families = families
        try:
            return generate_latest(self.registry)
        finally:
            self.snapshot.families = []


@bp.record_once
def _count_messages(setup: Any) -> None:
    """Install the counters' tap on the node's hub when the app gets this blueprint."""
    counters = setup.app.extensions[EXTENSION] = MessageCounters()
    setup.app.extensions["zapvisor"].node.hub.add_tap(counters.tap)


def _gauge(name: str, doc: str, samples: list[tuple[dict, float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=sorted({k for labels, _ in samples for k in labels}))
    for labels, value in samples:
        family.add_metric([str(labels[k]) for k in sorted(labels)], value)
    return family


@endpoint(bp, "GET", "/metrics", summary="Prometheus metrics", auth=Auth.NONE, produces=("text/plain",))
async def metrics(who: None):
    st = state()
    node = st.node
    actors = list(node.system.tree().walk())
    restarts = CounterMetricFamily("zapvisor_actor_restarts", "Restarts per actor.", labels=["path"])
    for actor in actors:
        restarts.add_metric([actor.path], actor.restarts)
    breakers = dict.fromkeys(BREAKER_MODES, 0)
    for actor in actors:
        if actor.breaker is not None:
            breakers[actor.breaker] = breakers.get(actor.breaker, 0) + 1
    stored = CounterMetricFamily("zapvisor_messages_stored", "Messages stored (inbound and outbound, all time).",
                                 value=await node.store.count_messages())
    pending = sum([len(await node.store.list_jobs(Queue.OUTBOX, JobStatus(s), limit=OUTBOX_PENDING_CAP))
                   for s in ("queued", "running", "sending")])
    unknown = len(await node.store.list_jobs(Queue.OUTBOX, JobStatus.UNKNOWN, limit=OUTBOX_PENDING_CAP))
    store = node.store.statistics()
    batches = CounterMetricFamily("zapvisor_store_batches", "Store transactions committed.", value=store.batches)
    pool = node.deps.pool.statistics()
    families = [
        _gauge("zapvisor_sessions", "Sessions by status.", [({"status": s}, n) for s, n in node.board.counts().items()]),
        restarts,
        _gauge("zapvisor_breakers", "Circuit breakers by mode.", [({"mode": m}, n) for m, n in breakers.items()]),
        _gauge("zapvisor_mailbox_depth", "Messages waiting in each actor's mailbox.",
               [({"path": a.path}, a.mailbox_depth) for a in actors]),
        stored,
        _gauge("zapvisor_outbox_depth", f"Outbox items queued, running or sending (up to {OUTBOX_PENDING_CAP}).",
               [({}, pending)]),
        _gauge("zapvisor_outbox_unknown",
               f"Sends whose outcome is unknown, waiting for an operator (up to {OUTBOX_PENDING_CAP}).",
               [({}, unknown)]),
        _gauge("zapvisor_websocket_clients", "Connected websocket clients.", [({}, st.websocket_clients())]),
        _gauge("zapvisor_store_batch_seconds", "Store write latency, submit to acknowledgement.",
               [({"quantile": "0.5"}, store.latency_p50), ({"quantile": "0.99"}, store.latency_p99)]),
        batches,
        _gauge("zapvisor_session_pool", "Session pool slots.",
               [({"kind": "active"}, pool.active), ({"kind": "waiting"}, pool.waiting),
                ({"kind": "max"}, pool.max_sessions)]),
    ]
    families.extend(_lifecycle(node.sweeper.statistics()))
    return Response(current_app.extensions[EXTENSION].render(families), content_type=CONTENT_TYPE)


def _lifecycle(stats: Any) -> list[Metric]:
    """The janitor's counters (see actors.lifecycle): what retention and purges removed, runs."""
    rows = CounterMetricFamily("zapvisor_janitor_rows_deleted", "Rows the janitor deleted (media: files detached "
                               "from their message), by kind (the retention kinds, and purge).", labels=["kind"])
    files = CounterMetricFamily("zapvisor_janitor_files_deleted", "Files the janitor deleted (media, credentials), "
                                "by kind.", labels=["kind"])
    for kind in sorted(set(stats.rows) | set(stats.files)):
        rows.add_metric([kind], stats.rows.get(kind, 0))
        files.add_metric([kind], stats.files.get(kind, 0))
    return [
        rows, files,
        CounterMetricFamily("zapvisor_janitor_runs", "Janitor runs completed on this node.", value=stats.runs),
        CounterMetricFamily("zapvisor_janitor_errors", "Rows, files or purges the janitor failed on (logged).",
                            value=stats.errors),
        _gauge("zapvisor_janitor_last_run_seconds", "Duration of this node's last janitor run.",
               [] if stats.last_duration is None else [({}, stats.last_duration)]),
    ]
