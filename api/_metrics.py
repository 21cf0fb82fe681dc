"""``/metrics`` in the Prometheus text format (version 0.0.4).

Everything is read at scrape time from snapshots (tree, board, statistics) and two
cheap store counts; nothing is accumulated here, so a scrape has no side effects.
"""

from __future__ import annotations

from quart import Blueprint, Response

from actors.store import JobStatus, Queue
from supervisor import BreakerMode

from ._routing import Auth, endpoint, state

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_MODES = tuple(mode.value for mode in BreakerMode)
OUTBOX_PENDING_CAP = 1000
"""Outbox depth is counted up to the store's largest page: beyond that the exact figure matters less
than the alarm, and the scrape stays cheap."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, doc: str, samples: list[tuple[dict, float]]) -> None:
        self.lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")


@endpoint(bp, "GET", "/metrics", summary="Prometheus metrics", auth=Auth.NONE, produces=("text/plain",))
async def metrics(who: None):
    st = state()
    node = st.node
    out = _Text()
    out.metric("zapvisor_sessions", "gauge", "Sessions by status.",
               [({"status": s}, n) for s, n in node.board.counts().items()])
    actors = list(node.system.tree().walk())
    out.metric("zapvisor_actor_restarts_total", "counter", "Restarts per actor.",
               [({"path": a.path}, a.restarts) for a in actors])
    breakers = {mode: 0 for mode in BREAKER_MODES}
    for a in actors:
        if a.breaker is not None:
            breakers[a.breaker] = breakers.get(a.breaker, 0) + 1
    out.metric("zapvisor_breakers", "gauge", "Circuit breakers by mode.",
               [({"mode": m}, n) for m, n in breakers.items()])
    out.metric("zapvisor_mailbox_depth", "gauge", "Messages waiting in each actor's mailbox.",
               [({"path": a.path}, a.mailbox_depth) for a in actors])
    total = await node.store.count_messages()
    outbound = len(await node.store.list_jobs(Queue.OUTBOX, JobStatus.DONE, limit=OUTBOX_PENDING_CAP))
    out.metric("zapvisor_messages_stored_total", "counter", "Messages stored (inbound and outbound).",
               [({}, total)])
    out.metric("zapvisor_messages_sent_total", "counter",
               f"Outbox items sent (counted up to {OUTBOX_PENDING_CAP}).", [({}, outbound)])
    pending = sum([len(await node.store.list_jobs(Queue.OUTBOX, JobStatus(s), limit=OUTBOX_PENDING_CAP))
                   for s in ("queued", "running", "sending")])
    out.metric("zapvisor_outbox_depth", "gauge",
               f"Outbox items queued, running or sending (up to {OUTBOX_PENDING_CAP}).", [({}, pending)])
    unknown = len(await node.store.list_jobs(Queue.OUTBOX, JobStatus.UNKNOWN, limit=OUTBOX_PENDING_CAP))
    out.metric("zapvisor_outbox_unknown", "gauge",
               f"Sends whose outcome is unknown, waiting for an operator (up to {OUTBOX_PENDING_CAP}).",
               [({}, unknown)])
    out.metric("zapvisor_websocket_clients", "gauge", "Connected websocket clients.",
               [({}, st.websocket_clients())])
    store = node.store.statistics()
    out.metric("zapvisor_store_batch_seconds", "gauge", "Store write latency, submit to acknowledgement.",
               [({"quantile": "0.5"}, store.latency_p50), ({"quantile": "0.99"}, store.latency_p99)])
    out.metric("zapvisor_store_batches_total", "counter", "Store transactions committed.", [({}, store.batches)])
    pool = node.deps.pool.statistics()
    out.metric("zapvisor_session_pool", "gauge", "Session pool slots.",
               [({"kind": "active"}, pool.active), ({"kind": "waiting"}, pool.waiting),
                ({"kind": "max"}, pool.max_sessions)])
    return Response("\n".join(out.lines) + "\n", content_type=CONTENT_TYPE)
