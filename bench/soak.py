"""Soak benchmark: one daemon on PostgreSQL and Redis under steady churn; does anything grow?

    python -m bench.soak [--quick] [--duration SECONDS] [--plot PATH]

A ``zapvisor run`` subprocess (PostgreSQL store, Redis bus, the simulated driver against a real
simulator process) runs for ``--duration`` seconds of churn (1,800; 150 with ``--quick``) while this
process keeps every kind of work going at a steady pace:

- **sessions**: STABLE paired sessions stay up; a churn loop creates a session over the REST API,
  connects it (QR, scanned by the simulator), has it receive messages, drops its link with a
  simulator fault (it reconnects by itself), then logs it out and deletes it — over and over;
- **inbound**: text and media (a small PNG: a media job each) from a rotating pool of contacts to the
  stable sessions, so tickets keep being created and reopened;
- **tickets**: pending ones accepted and answered through the outbox, open ones closed; idle ticket
  actors are passivated (``tickets.idle_timeout`` IDLE_TIMEOUT s);
- **websocket agents**: AGENTS clients join their tenant's room and ticket rooms, read, leave, close,
  and reconnect joining again with ``since`` and ``epoch`` (resume);
- **webhooks**: ticket and session events (WEBHOOK_EVENTS) POSTed to a local receiver that answers
  500 to one call in FAIL_EVERY (retried, some end as dead letters: the expected failures).

Every duration/60 seconds (2 to 15) it reads ``GET /supervision/runtime`` (RSS, fds, threads, actors, trio
tasks and deadlines, asyncio tasks; with object counts by type on every OBJECTS_EVERY-th sample) and
PostgreSQL's ``pg_stat_activity`` (the store's pool connections). Once the churn stops it waits for
quiescence (queues empty, websocket clients gone, ticket actors passivated) and samples again.

Figures (last line, one JSON object, ``error_detail`` naming what counted in ``errors``; with
``--tracemalloc`` the daemon runs under ``PYTHONTRACEMALLOC=1`` and ``top_allocation_growth`` names the
source lines whose memory grew): ``rss_slope_mb_per_h`` and ``fd_slope_per_h`` (least squares
over the churn samples after WARMUP of the run), ``memory_slopes_mb_per_h`` (where RSS goes: the
C heap's bytes in use and free, Python's allocated blocks; see :func:`memory_slopes`), ``actors_end_minus_start`` /
``tasks_end_minus_start`` / ``fds_end_minus_start`` / ``threads_end_minus_start`` /
``pg_connections_end_minus_start`` (quiet after minus quiet before the churn), ``top_growth`` (object
types that grew most between the end of the warm-up and the quiet end), ``errors`` (the daemon's
ERROR log lines plus operations that should have succeeded and did not, listed in
``error_detail``), the work done (``ops``), ``duration_s``. The curves are drawn to ``--plot``
(default ``test-artifacts/soak.png``).
"""

from __future__ import annotations

import argparse
import base64
import collections
import functools
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import httpx
import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

from actors.simulator import SimulatorError, SimulatorProcess
from bench._redis import RedisServer
from bench._servers import PostgresServer, free_port
from bench.chaos import Daemon, errors_logged

TARGETS = {"rss_slope_mb_per_h": "<= 5 after warm-up", "fd_slope_per_h": "~ 0", "actors_end_minus_start": "~ 0",
           "tasks_end_minus_start": "~ 0", "errors": "0"}

ADMIN_TOKEN = "soak-bench-admin-token-0123456789"
TENANT = "soak"
STABLE = 6
"""Paired sessions that stay up the whole run."""
CONTACTS = 40
"""Contacts per stable session, written to in rotation (tickets are created, closed, reopened)."""
IN_RATE = 8.0
"""Inbound text messages per second over the stable sessions."""
MEDIA_EVERY = 2.0
"""Seconds between inbound media messages (each one a media job)."""
AGENTS = 8
IDLE_TIMEOUT = 15.0
"""``tickets.idle_timeout`` of the run: ticket actors passivated often, as in months of traffic."""
FAIL_EVERY = 5
WEBHOOK_EVENTS = ["ticket.*", "connection.update", "logout.instance", "remove.instance"]
"""What the receiver subscribes to: every ticket change and session event (not each message)."""
WARMUP = 0.3
"""Fraction of the churn left out of the slopes (imports, caches, pools and arenas filling up)."""
QUIET_TIMEOUT = 120.0
"""Real seconds the run waits for quiescence after the churn (queues empty, actors passivated)."""
HTTP_TIMEOUT = 30.0
OBJECTS_EVERY = 5
"""Samples between object counts (each walks the daemon's heap: tens of ms on its trio thread)."""
FAULTED = re.compile(r"/sessions/churn\d+ failed: SessionDisconnected")
"""The ERROR line a dropped link writes (the session fails and its supervisor restarts it): one per
fault the soak injected is expected; more are counted as errors."""
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def contact(session: int, i: int) -> str:
    return f"55219{session:03d}{i:05d}@s.whatsapp.net"


@attrs.define(eq=False)
class Tally:
    """Work done by kind, and operations that should have succeeded but did not (by what and why)."""

    ops: collections.Counter = attrs.field(factory=collections.Counter)
    failed: collections.Counter = attrs.field(factory=collections.Counter)

    def check(self, what: str, response: httpx.Response, *ok: int) -> bool:
        if response.status_code in (ok or (200,)):
            self.ops[what] += 1
            return True
        self.failed[f"{what}: {response.status_code} {response.text[:120]}"] += 1
        return False

    def fail(self, what: str, why: BaseException | str) -> None:
        self.failed[f"{what}: {why if isinstance(why, str) else type(why).__name__ + ' ' + str(why)[:100]}"] += 1


@attrs.define(eq=False)
class Receiver:
    """The webhooks' target: answers 500 to every FAIL_EVERY-th call, 200 to the others."""

    calls: int = 0
    url: str = ""

    async def handle(self) -> tuple[str, int]:
        self.calls += 1
        return "", 500 if self.calls % FAIL_EVERY == 0 else 200

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        app = QuartTrio(__name__)
        app.add_url_rule("/hook", "hook", self.handle, methods=["POST"])
        config = Config()
        config.bind, config.accesslog, config.errorlog = ["127.0.0.1:0"], None, None
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=trio.sleep_forever))
            self.url = urls[0] + "/hook"
            task_status.started()


async def wait_status(client: httpx.AsyncClient, session: str, wanted: str, timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        while (await client.get(f"/tenants/{TENANT}/sessions/{session}")).json().get("status") != wanted:
            await trio.sleep(0.2)


async def pair(client: httpx.AsyncClient, control, session: str, tally: Tally) -> bool:
    """Create ``session`` over the API, connect it, scan its QR; True once it is connected."""
    created = await client.post(f"/tenants/{TENANT}/sessions", json={"id": session, "name": session})
    if not tally.check("session_create", created, 201):
        return False
    connect = await client.post(f"/tenants/{TENANT}/sessions/{session}/connect", json={})
    if not tally.check("session_connect", connect) or connect.json().get("status") != "qr":
        tally.fail("session_connect", f"status {connect.json().get('status')}")
        return False
    await control.scan(session)
    await wait_status(client, session, "connected")
    return True


async def session_churn(client: httpx.AsyncClient, control, tally: Tally, stopping: trio.Event) -> None:
    """Create, connect, receive, drop (a simulator fault), reconnect, log out or not, delete; until
    ``stopping`` is set (a cycle in progress is finished: its session deleted)."""
    for n in itertools.count():
        if stopping.is_set():
            return
        session = f"churn{n}"
        try:
            if not await pair(client, control, session, tally):
                continue
            for i in range(3):
                await control.send_message(session, f"churn {n} {i}", sender=contact(900, i))
            await control.drop(session)  # the link dies: the session reconnects by itself
            tally.ops["session_fault"] += 1
            with trio.move_on_after(10):  # seen down (a restart may be quicker than a poll: then go on)
                while (await client.get(f"/tenants/{TENANT}/sessions/{session}")).json().get("status") == "connected":
                    await trio.sleep(0.05)
            await wait_status(client, session, "connected")
            if n % 2 == 0:
                tally.check("session_logout", await client.post(f"/tenants/{TENANT}/sessions/{session}/logout"))
            tally.check("session_delete", await client.delete(f"/tenants/{TENANT}/sessions/{session}"), 200, 204)
        except (trio.TooSlowError, httpx.HTTPError, SimulatorError) as error:
            tally.fail("session_churn", error)
        await trio.sleep(0.5)


async def inbound(control, tally: Tally) -> None:
    """Text from rotating contacts to the stable sessions; a media message every MEDIA_EVERY s."""
    last_media = trio.current_time()
    for i in itertools.count():
        s = i % STABLE
        sender = contact(s, (i // STABLE) % CONTACTS)
        try:
            if trio.current_time() - last_media >= MEDIA_EVERY:
                await control.send_message(f"s{s}", "", sender=sender, media=PNG, media_kind="image",
                                           mimetype="image/png", file_name="p.png")
                last_media = trio.current_time()
                tally.ops["inbound_media"] += 1
            else:
                await control.send_message(f"s{s}", f"in {i}", sender=sender, push_name=f"C{s}")
                tally.ops["inbound_text"] += 1
        except SimulatorError as error:
            tally.fail("inbound", error)
        await trio.sleep(1 / IN_RATE)


async def ticket_work(client: httpx.AsyncClient, user_id: int, tally: Tally) -> None:
    """Accept pending tickets and answer them; close the open ones answered earlier."""
    stable = {f"s{s}" for s in range(STABLE)}
    answered: list[int] = []
    for n in itertools.count():
        try:
            pending = (await client.get(f"/tenants/{TENANT}/tickets", params={"status": "pending"})).json()
            for ticket in [t for t in pending if t["session_id"] in stable][:3]:
                tid = ticket["id"]
                if tally.check("ticket_accept", await client.post(f"/tenants/{TENANT}/tickets/{tid}/accept",
                                                                  json={"user_id": user_id})):
                    sent = await client.post(f"/tenants/{TENANT}/tickets/{tid}/messages", json={"text": f"re {n}"},
                                             headers={"Idempotency-Key": f"reply-{tid}-{n}"})
                    tally.check("ticket_reply", sent, 200, 201, 202)
                    answered.append(tid)
            while len(answered) > 6:
                tid = answered.pop(0)
                tally.check("ticket_close", await client.post(f"/tenants/{TENANT}/tickets/{tid}/close"))
        except httpx.HTTPError as error:
            tally.fail("ticket_work", error)
        await trio.sleep(1.0)


async def agent(url: str, token: str, tally: Tally, seed: int) -> None:
    """Join the tenant room (and a ticket room when one shows), read, leave, close; reconnect with resume."""
    rng = random.Random(seed)
    seen: dict[str, tuple[int, str]] = {}  # room -> (last seq, epoch)
    headers = [(b"Authorization", f"Bearer {token}".encode())]
    while True:
        try:
            async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
                tally.ops["ws_connect"] += 1
                await join(ws, "tenant:" + TENANT, seen)
                with trio.move_on_after(rng.uniform(3, 10)):
                    while True:
                        frame = json.loads(await ws.get_message())
                        room = frame.get("room")
                        if frame.get("type") == "joined":
                            seen[room] = (frame["seq"], frame["epoch"])
                        elif frame.get("type") == "resync":
                            seen[room] = (frame["seq"], frame["epoch"])
                            tally.ops["ws_resync"] += 1
                        elif "seq" in frame and room in seen:
                            seen[room] = (frame["seq"], seen[room][1])
                            tally.ops["ws_event"] += 1
                            ticket = (frame.get("payload") or {}).get("ticket_id")
                            if ticket and len(seen) < 4 and rng.random() < 0.1:
                                await join(ws, f"ticket:{ticket}", seen)
                        elif frame.get("type") in ("error", "lagged"):
                            tally.fail("ws_frame", frame["type"])
                for room in [r for r in seen if r.startswith("ticket:")]:
                    await ws.send_message(json.dumps({"op": "leave", "room": room}))
                    del seen[room]
                    tally.ops["ws_leave"] += 1
        except (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError) as error:
            tally.fail("ws_agent", error)
        await trio.sleep(rng.uniform(0.2, 1.0))


async def join(ws, room: str, seen: dict[str, tuple[int, str]]) -> None:
    request = {"op": "join", "room": room}
    if room in seen:
        request |= {"since": seen[room][0], "epoch": seen[room][1]}
    await ws.send_message(json.dumps(request))


async def pg_connections(pg: PostgresServer, database: str) -> int:
    """Server connections of the daemon's database (``pg_stat_activity``)."""
    result = await trio.run_process(
        [str(pg.bindir / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-tAc",
         f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"], capture_stdout=True)
    return int(result.stdout.decode().strip())


@attrs.define(eq=False)
class Sampler:
    """Samples of the daemon's runtime figures over time (``t`` in seconds since the churn began)."""

    client: httpx.AsyncClient
    pg: PostgresServer
    database: str
    began: float = 0.0
    samples: list[dict] = attrs.field(factory=list)

    async def sample(self, phase: str, objects: bool) -> dict:
        stats = (await self.client.get("/supervision/runtime", params={"objects": 200 if objects else 0})).json()
        stats |= {"t": trio.current_time() - self.began, "phase": phase,
                  "pg_connections": await pg_connections(self.pg, self.database)}
        self.samples.append(stats)
        return stats

    async def run(self, every: float, objects_every: int) -> None:
        for n in itertools.count():
            stats = await self.sample("churn", n % objects_every == 0)
            if n % objects_every == 0:  # a line now and then for whoever watches a long run
                print(f"soak: t={stats['t']:.0f}s rss={stats['rss_bytes'] / 2**20:.1f}MB fds={stats['fds']} "
                      f"actors={stats['actors']} tasks={stats['trio_tasks']} frozen={stats.get('gc_frozen')} "
                      f"blocks={stats.get('python_blocks')} malloc={stats.get('malloc')}", file=sys.stderr)
            await trio.sleep(every)


async def actor_paths(client: httpx.AsyncClient) -> set[str]:
    """Every actor path of the live tree (``GET /supervision/tree``)."""
    found, stack = set(), [(await client.get("/supervision/tree")).json()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "path" in node:
                found.add(node["path"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


async def quiet(client: httpx.AsyncClient, sampler: Sampler, baseline: dict) -> dict:
    """Wait for the queues to empty, websocket clients to go and ticket actors to be passivated; sample."""
    began = trio.current_time()
    with trio.move_on_after(QUIET_TIMEOUT):
        while True:
            answer = await client.get("/queues")
            queues = answer.json() if answer.status_code == 200 else {"?": {"jobs": {"queued": answer.status_code}}}
            busy = {name: sum(q["jobs"].get(state, 0) for state in ("queued", "running", "sending"))
                    for name, q in queues.items()}
            stats = await sampler.sample("quiet", False) | {"busy": busy}
            busy = sum(busy.values())
            if busy == 0 and stats["actors"] <= baseline["actors"] and stats["trio_tasks"] <= baseline["trio_tasks"]:
                break
            await trio.sleep(2.0)
    await trio.sleep(2.0)
    return await sampler.sample("end", True) | {"quiet_s": trio.current_time() - began, "busy": stats["busy"]}


def slope_per_hour(samples: list[dict], key) -> float:
    """Least-squares slope of ``key(sample)`` against time, per hour."""
    points = [(s["t"], key(s)) for s in samples]
    n = len(points)
    if n < 2:
        return float("nan")
    mt, mv = sum(t for t, _ in points) / n, sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 3600 * sum((t - mt) * (v - mv) for t, v in points) / var if var else float("nan")


def memory_slopes(samples: list[dict]) -> dict[str, float] | None:
    """Where RSS goes (MB/h): the C heap's bytes in use (``c_in_use``: held by the program and
    its native libraries) and free inside it (``c_free``: the allocator's holes, api/_malloc.py; counted
    whether still resident or handed back by the daemon's trim, so it can grow while RSS does not),
    and Python's allocated blocks (``python_kblocks``, in thousands of blocks per hour, not MB)."""
    if not samples or samples[0].get("malloc") is None:
        return None
    return {"c_in_use": round(slope_per_hour(samples, lambda s: s["malloc"]["in_use"] / 2**20), 1),
            "c_free": round(slope_per_hour(samples, lambda s: s["malloc"]["free"] / 2**20), 1),
            "python_kblocks": round(slope_per_hour(samples, lambda s: s["python_blocks"] / 1000), 1)}


def growth(before: dict, after: dict, top: int = 10) -> dict[str, int]:
    grown = {name: after.get(name, 0) - before.get(name, 0) for name in set(before) | set(after)}
    return dict(sorted(((k, v) for k, v in grown.items() if v > 0), key=lambda kv: -kv[1])[:top])


def plot(samples: list[dict], path: Path, warm_until: float) -> None:
    import matplotlib  # a bench-only dependency (the test extra): imported where it is used

    matplotlib.use("Agg")
    from matplotlib import pyplot

    series = [("RSS (MB)", lambda s: s["rss_bytes"] / 2**20), ("open fds", lambda s: s["fds"]),
              ("threads", lambda s: s["threads"]), ("live actors", lambda s: s["actors"]),
              ("trio tasks", lambda s: s["trio_tasks"]),
              ("trio deadlines (active)", lambda s: (s["trio_deadlines"] or {}).get("active", 0)),
              ("asyncio tasks", lambda s: s["asyncio_tasks"] or 0), ("PostgreSQL connections", lambda s: s["pg_connections"])]
    figure, axes = pyplot.subplots(4, 2, figsize=(12, 11), sharex=True)
    t = [s["t"] / 60 for s in samples]
    for ax, (title, key) in zip(axes.flat, series):
        ax.plot(t, [key(s) for s in samples], marker=".", linewidth=1)
        ax.axvspan(0, warm_until / 60, color="0.9", label="warm-up")
        churn_end = max((s["t"] for s in samples if s["phase"] == "churn"), default=0) / 60
        ax.axvline(churn_end, color="tab:red", linestyle="--", linewidth=1, label="churn stops")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("minutes")
    axes[0][0].legend(loc="lower right")
    figure.suptitle("zapvisor soak: one daemon on PostgreSQL + Redis under churn (bench/soak.py)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)


async def soak(duration: float, every: float, root: Path, pg: PostgresServer, redis: RedisServer,
               log_copy: Path | None, trace: bool) -> dict:
    database = "soak"
    dsn = pg.create_database(database)
    simulator = SimulatorProcess(state_dir=root / "simulator", args=("--flush-interval", "0.2"))
    await simulator.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")} | {
        "ZAPVISOR_NODE__DATA_DIR": str(root / "data"),
        "ZAPVISOR_STORE__BACKEND": "postgres",
        "ZAPVISOR_STORE__POSTGRES_DSN": dsn,
        "ZAPVISOR_BUS__BACKEND": "redis",
        "ZAPVISOR_BUS__REDIS_URL": redis.url,
        "ZAPVISOR_SESSIONS__DRIVER": "simulated",
        "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator.url,
        "ZAPVISOR_OUTBOX__PACING_INTERVAL": "0.05",
        "ZAPVISOR_OUTBOX__PACING_JITTER": "0",
        "ZAPVISOR_TICKETS__IDLE_TIMEOUT": str(IDLE_TIMEOUT),
        "ZAPVISOR_WEBHOOKS__ALLOW_TARGETS": "127.0.0.1/32",
        "ZAPVISOR_WEBHOOKS__BACKOFF_INITIAL": "0.5",
        "ZAPVISOR_API__ADMIN_TOKEN": ADMIN_TOKEN,
        "ZAPVISOR_API__PORT": str(port),
        "ZAPVISOR_LOGGING__LEVEL": "warning",
    } | ({"PYTHONTRACEMALLOC": "1"} if trace else {})
    daemon = Daemon(env, root / "daemon.log", f"http://127.0.0.1:{port}")
    tally, receiver = Tally(), Receiver()
    try:
        async with simulator.control() as control, simulator.control() as churn_control, \
                trio.open_nursery() as outer, \
                httpx.AsyncClient(base_url=daemon.url, timeout=HTTP_TIMEOUT,
                                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            await outer.start(receiver.serve)
            await daemon.start()
            outer.start_soon(daemon.watch)
            tally.check("tenant", await client.post("/tenants", json={"id": TENANT, "name": "Soak"}), 200, 201)
            user = (await client.post(f"/tenants/{TENANT}/users", json={"email": "a@soak.test", "name": "A"})).json()
            token = (await client.post(f"/tenants/{TENANT}/tokens", json={"user_id": user["id"]})).json()["token"]
            tally.check("webhook", await client.post(f"/tenants/{TENANT}/webhooks",
                                                     json={"url": receiver.url, "events": WEBHOOK_EVENTS}), 200, 201)
            for s in range(STABLE):
                await pair(client, control, f"s{s}", tally)
            sampler = Sampler(client, pg, database)
            await trio.sleep(3)
            start = await sampler.sample("start", True)
            paths_before = await actor_paths(client)
            sampler.began = trio.current_time()
            sampler.samples[-1]["t"] = 0.0
            stopping = trio.Event()
            async with trio.open_nursery() as sessions, trio.open_nursery() as churn:
                sessions.start_soon(session_churn, client, churn_control, tally, stopping)
                churn.start_soon(inbound, control, tally)
                churn.start_soon(ticket_work, client, user["id"], tally)
                for i in range(AGENTS):
                    churn.start_soon(agent, f"ws://127.0.0.1:{port}/ws", token, tally, i)
                churn.start_soon(sampler.run, every, OBJECTS_EVERY)
                await trio.sleep(duration)
                churn.cancel_scope.cancel()
                stopping.set()
            warm = [s for s in sampler.samples if s["phase"] == "churn" and s["t"] >= WARMUP * duration]
            end = await quiet(client, sampler, start)
            paths_after = await actor_paths(client)
            warm_sample = next((s for s in warm if "objects" in s), start)
            outer.cancel_scope.cancel()
    finally:
        await daemon.stop()
        await simulator.kill()
    logged = errors_logged(daemon.log)
    if log_copy is not None:
        log_copy.write_bytes(daemon.log.read_bytes())
    expected = {line: n for line, n in logged.items() if FAULTED.search(line)}
    surplus = max(0, sum(expected.values()) - tally.ops["session_fault"])
    return {
        "rss_slope_mb_per_h": slope_per_hour(warm, lambda s: s["rss_bytes"] / 2**20),
        "fd_slope_per_h": slope_per_hour(warm, lambda s: s["fds"]),
        "memory_slopes_mb_per_h": memory_slopes(warm),
        "actors_end_minus_start": end["actors"] - start["actors"],
        "tasks_end_minus_start": end["trio_tasks"] - start["trio_tasks"],
        "fds_end_minus_start": end["fds"] - start["fds"],
        "threads_end_minus_start": end["threads"] - start["threads"],
        "deadlines_end_minus_start": (end["trio_deadlines"] or {}).get("active", 0)
        - (start["trio_deadlines"] or {}).get("active", 0),
        "asyncio_tasks_end_minus_start": (end["asyncio_tasks"] or 0) - (start["asyncio_tasks"] or 0),
        "pg_connections_end_minus_start": end["pg_connections"] - start["pg_connections"],
        "rss_mb_start_end": [round(start["rss_bytes"] / 2**20, 1), round(end["rss_bytes"] / 2**20, 1)],
        "gc_frozen_start_end": [start.get("gc_frozen"), end.get("gc_frozen")],
        "top_growth": growth(warm_sample["objects"], end["objects"]),
        "top_allocation_growth": growth(warm_sample["allocations"], end["allocations"])
        if end.get("allocations") else None,
        "errors": sum(logged.values()) - sum(expected.values()) + surplus + sum(tally.failed.values()),
        "error_detail": {"daemon_log": {k: n for k, n in logged.items() if k not in expected},
                         "operations": dict(tally.failed)},
        "expected_errors": sum(expected.values()) - surplus,
        "actors_left": sorted(paths_after - paths_before),
        "actors_gone": sorted(paths_before - paths_after),
        "quiet_s": end["quiet_s"],
        "jobs_in_flight_at_end": end["busy"],
        "daemon_exits": daemon.exits,
        "ops": dict(tally.ops),
        "webhook_calls": receiver.calls,
        "samples": len(sampler.samples),
        "duration_s": duration,
        "_samples": sampler.samples,
        "_warm_until": WARMUP * duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 s of churn instead of 30 minutes")
    parser.add_argument("--duration", type=float, help="seconds of churn (overrides --quick)")
    parser.add_argument("--plot", type=Path, default=Path("test-artifacts/soak.png"), help="where the PNG goes")
    parser.add_argument("--log", type=Path, help="keep a copy of the daemon's log here")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="run the daemon with PYTHONTRACEMALLOC=1 and report the source lines that grew (slow)")
    args = parser.parse_args()
    duration = args.duration or (150.0 if args.quick else 1800.0)
    if duration < 30:
        parser.error("--duration must be at least 30 seconds")
    every = max(2.0, min(15.0, duration / 60))
    started = time.monotonic()
    pg = PostgresServer.create()
    redis = RedisServer()
    try:
        pg.start()
        redis.start()
        with tempfile.TemporaryDirectory(prefix="zapvisor-bench-soak-") as tmp:
            result = trio.run(soak, duration, every, Path(tmp), pg, redis, args.log, args.tracemalloc)
    finally:
        redis.close()
        pg.destroy()
    plot(result.pop("_samples"), args.plot, result.pop("_warm_until"))
    result = {key: round(value, 2) if isinstance(value, float) else value for key, value in result.items()}
    result |= {"plot": str(args.plot), "wall_s": round(time.monotonic() - started, 1), "targets": TARGETS}
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
