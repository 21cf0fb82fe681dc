"""Benchmark a cluster's failover and drain: three daemons, one PostgreSQL, one Redis.

    python -m bench.failover [--quick] [--sessions N]

Three ``zapvisor run`` processes (real daemons, the simulated driver) share a throwaway
PostgreSQL (on a tmpfs when there is one) and Redis; a real simulator process plays WhatsApp. N paired sessions
(1,000; 60 with ``--quick``) are written to the store as live; the daemons place them among
themselves (rendezvous hashing) and connect them. Steady inbound traffic runs throughout.

1. Sends through the REST API of a node that does not run the session, against the baseline of
   sends through the node that does (same run): ``cross_node_send_p99_ms`` /
   ``same_node_send_p99_ms``, from the request to the simulator's receipt of the message.
2. ``kill -9`` of the node that runs the most sessions: ``failover_s`` is the time until every
   session is connected again, each on exactly one survivor (the simulator's live links and
   ``GET /cluster``).
3. SIGTERM of a survivor that runs sessions: ``drain_s``, the same until the last node runs them all;
   ``drain_release_s``, until the drained node holds none of their leases (read in Redis): the
   rest of ``drain_s`` is the last node connecting them, at its connect limiter's pace.

4. The killed node comes back (traffic stopped): ``killed_journal_entries`` is what its journal held
   (receipted to WhatsApp, not stored: lost if it never came back), ``rejoin_replay_s`` the time
   from its start until its boot replay emptied the journal into the store.

``lost``: inbound messages the generator produced that the store does not have once traffic
stopped and the killed node came back (``undelivered``: those the simulator still holds, never acknowledged); ``duplicated``: rows beyond one per message id; ``double_connects``: connections the
simulator ended with 440 because a second connection of the same account arrived (two nodes
at once). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
import trio

from actors.drivers._journal import read_pending
from actors.drivers._simulated import JOURNAL_FILE
from actors.simulator import SimulatorProcess
from actors.store import PostgresBackend, open_store
from bench._redis import RedisServer
from bench._servers import PostgresServer

TARGETS = {"failover_s": "<= 20 at 1000 sessions", "drain_s": "<= 5", "lost": "0", "duplicated": "0",
           "double_connects": "0", "cross_node_send_p99_ms": "< 1000"}

NODES = ("n1", "n2", "n3")
ADMIN_TOKEN = "bench-admin-token-0123456789"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef012345"
ZAPVISOR = str(Path(sys.executable).with_name("zapvisor"))
#: Inbound messages per second over all sessions, throughout.
INBOUND_RATE = 50.0
#: Sessions connecting at once per node, and per second: the connect limiter's settings for the
#: run (the default 5/s protects one machine's numbers from bans; a takeover of hundreds of
#: sessions by a survivor is what the limiter's rate is for).
CONNECT_RATE = 100.0
#: Real seconds for any phase (start, connect, failover, drain) before the run gives up.
PHASE_TIMEOUT = 300.0
#: Real seconds the store may take to catch up with the traffic once it stopped (a loaded shared
#: machine); what is missing after that counts as lost.
STORE_DRAIN_TIMEOUT = 180.0
#: Sends measured each way (cross-node, and same-node as the baseline).
SENDS = 40
#: Sends in flight at once (each kind): a steady trickle of agent replies, not a burst.
SENDS_AT_ONCE = 5


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)] if ordered else float("nan")


class Daemon:
    """One ``zapvisor run`` with its log in a file."""

    def __init__(self, root: Path, name: str, env: dict[str, str]) -> None:
        self.name, self.log = name, root / f"{name}.log"
        (root / name).mkdir(parents=True, exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}, **env,
                    "ZAPVISOR_NODE__NODE_ID": name, "ZAPVISOR_NODE__DATA_DIR": str(root / name / "data")}
        self.process: trio.Process | None = None
        self.url = ""
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = await trio.lowlevel.open_process([ZAPVISOR, "run"], env=self.env, stdin=subprocess.DEVNULL,
                                                            stdout=log, stderr=log)
        with trio.fail_after(PHASE_TIMEOUT):
            while not (found := re.search(r"Running on (http://[\d.:]+)", self.log.read_text())):
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
                await trio.sleep(0.1)
        self.url = found.group(1)
        self.client = httpx.AsyncClient(base_url=self.url, timeout=60.0,
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    async def cluster(self) -> dict:
        return (await self.client.get("/cluster")).json()

    def stop(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)


async def seed(dsn: str, simulator: SimulatorProcess, sessions: list[str]) -> None:
    """Paired accounts in the simulator; sessions written as live, with their credentials, in the store."""
    limiter = trio.CapacityLimiter(20)
    async with open_store(PostgresBackend(dsn)) as store:
        await store.upsert_tenant("bench", "Bench")

        async def one(session_id: str) -> None:
            async with limiter, simulator.control() as control:
                creds = (await control.create_account(session_id, paired=True))["creds"]
            await store.upsert_session(session_id, "bench", session_id)
            await store.set_session_status(session_id, "connecting")  # live: the cluster places and starts it
            await store.set_credentials(session_id, "simulated", creds)

        async with trio.open_nursery() as nursery:
            for session_id in sessions:
                nursery.start_soon(one, session_id)


async def settled(daemons: list[Daemon], control, sessions: int) -> dict[str, str]:
    """Wait until every session is connected on exactly one of ``daemons`` (which may own
    sessions); returns session -> node."""
    names = {d.name for d in daemons}
    while True:
        view = await daemons[0].cluster()
        owning = {m["node_id"] for m in view["members"] if not m["draining"]}
        runners: dict[str, list[str]] = {}
        for member in view["members"]:
            for session_id in member["sessions"]:
                runners.setdefault(session_id, []).append(member["node_id"])
        once = all(len(where) == 1 and where[0] in names for where in runners.values())
        if owning == names and len(runners) == sessions and once and (await control.stats()).connected == sessions:
            return {sid: where[0] for sid, where in runners.items()}
        await trio.sleep(0.1)


def leases_held(redis_url: str, node: str) -> int:
    """Session leases ``node`` holds now, read in Redis (blocking: run it in a thread). A lease is
    the key ``zv:l:session:<id>`` holding ``"<token>/<node id>"`` (``actors.bus``)."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        keys = list(client.scan_iter(match="zv:l:session:*", count=1000))
        return sum(1 for value in (client.mget(keys) if keys else []) if value and value.partition("/")[2] == node)


async def released(redis_url: str, node: str) -> None:
    """Return once ``node`` holds no session lease."""
    while await trio.to_thread.run_sync(leases_held, redis_url, node):
        await trio.sleep(0.05)


async def connected_over_time(control, started: float, samples: list[tuple[float, int]]) -> None:
    """Append (seconds since ``started``, sessions the simulator has connected) every 0.1 s."""
    while True:
        samples.append((trio.current_time() - started, (await control.stats()).connected))
        await trio.sleep(0.1)


def drain_phases(samples: list[tuple[float, int]], count: int) -> dict[str, float]:
    """From a drain's samples: when the last drained session was disconnected
    (``drain_disconnected_s``: the connected count at its lowest) and when every session was
    connected again (``drain_reconnected_s``); between the two, the last node's connects."""
    if not samples:
        return {}
    low = min(connected for _, connected in samples)
    at_low = next(t for t, connected in samples if connected == low)
    back = next((t for t, connected in samples if t >= at_low and connected == count), float("nan"))
    return {"drain_disconnected_s": at_low, "drain_reconnected_s": back, "drain_min_connected": low}


async def timed_sends(simulator: SimulatorProcess, pairs: list[tuple[Daemon, dict]], tag: str,
                      latencies: list[float], retried: list[str]) -> None:
    """Send one message per (node, ticket) through that node's API, a few at a time; appends to
    ``latencies`` the seconds from the request to the simulator's receipt (its own wall-clock
    stamp, so how often we look does not change the figure), and to ``retried`` the answer of
    each 503 that was retried (the latency then includes the retries)."""
    limiter = trio.CapacityLimiter(SENDS_AT_ONCE)

    async def one(index: int, daemon: Daemon, ticket: dict) -> None:
        text = f"{tag} {index}"
        async with limiter, simulator.control() as control:
            started = time.time()  # compared with the simulator's wall-clock receipt stamp
            while True:  # a 503 (a service restarting on a starved machine) is retried, as a client would
                reply = await daemon.client.post(f"/tenants/bench/tickets/{ticket['id']}/messages",
                                                 json={"text": text}, headers={"Idempotency-Key": f"{tag}-{index}"})
                if reply.status_code != 503:
                    break
                retried.append(reply.text)
                await trio.sleep(0.5)
            assert reply.status_code == 202, reply.text
            while not (got := [s for s in await control.sent(ticket["session_id"]) if s.get("text") == text]):
                await trio.sleep(0.1)
            latencies.append(got[0]["ts"] - started)

    async with trio.open_nursery() as nursery:
        for index, (daemon, ticket) in enumerate(pairs):
            nursery.start_soon(one, index, daemon, ticket)


async def stored_inbound(dsn: str, outbound: int) -> int:
    """Inbound rows in the store (every row but the ``outbound`` sends'; one row per message id
    at most: the table's unique key)."""
    async with open_store(PostgresBackend(dsn)) as store:
        return await store.count_messages() - outbound


async def run(root: Path, dsn: str, redis_url: str, count: int) -> dict:
    sessions = [f"f{i:04d}" for i in range(count)]
    simulator = SimulatorProcess(state_dir=root / "simulator", args=("--flush-interval", "0.2"))
    await simulator.start()
    env = {
        "ZAPVISOR_STORE__BACKEND": "postgres", "ZAPVISOR_STORE__POSTGRES_DSN": dsn,
        "ZAPVISOR_BUS__BACKEND": "redis", "ZAPVISOR_BUS__REDIS_URL": redis_url,
        "ZAPVISOR_SESSIONS__DRIVER": "simulated", "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator.url,
        "ZAPVISOR_SESSIONS__MAX_SESSIONS": str(count),
        "ZAPVISOR_SUPERVISION__RESTART_RATE": str(CONNECT_RATE),
        "ZAPVISOR_SUPERVISION__RESTART_BURST": str(int(CONNECT_RATE)),
        "ZAPVISOR_SUPERVISION__RESTART_MAX_CONCURRENT": str(int(CONNECT_RATE)),
        "ZAPVISOR_API__ADMIN_TOKEN": ADMIN_TOKEN, "ZAPVISOR_API__JWT_SECRET": JWT_SECRET,
        "ZAPVISOR_API__PORT": "0",
    }
    daemons = [Daemon(root, name, env) for name in NODES]
    result: dict = {"sessions": count, "nodes": len(NODES), "connect_rate_per_node": CONNECT_RATE,
                    "inbound_msgs_per_s": INBOUND_RATE}
    try:
        await seed(dsn, simulator, sessions)
        async with trio.open_nursery() as nursery:
            for daemon in daemons:
                nursery.start_soon(daemon.start)
        async with simulator.control() as control:
            started = trio.current_time()
            with trio.fail_after(PHASE_TIMEOUT):
                owners = await settled(daemons, control, count)
            result["start_s"] = trio.current_time() - started
            result["placed"] = {name: list(owners.values()).count(name) for name in NODES}
            await control.traffic_start(rate=INBOUND_RATE, contacts=5, media_share=0.0, group_share=0.0,
                                        broadcast_share=0.0, sessions=sessions, seed=7)
            with trio.fail_after(PHASE_TIMEOUT):  # tickets to send on
                while len(tickets := (await daemons[0].client.get("/tenants/bench/tickets?limit=1000")).json()) \
                        < min(2 * SENDS, count):
                    await trio.sleep(0.5)
            by_session = {t["session_id"]: t for t in tickets}
            picked = list(by_session.values())[: 2 * SENDS]
            half = len(picked) // 2  # one send per session: no session's pacing in the figure
            by_name = {d.name: d for d in daemons}
            same = [(by_name[owners[t["session_id"]]], t) for t in picked[:half]]
            cross = [(next(d for d in daemons if d.name != owners[t["session_id"]]), t) for t in picked[half:]]
            same_latency, cross_latency, retried = [], [], []
            async with trio.open_nursery() as nursery:  # at once: both under the same load
                nursery.start_soon(lambda: timed_sends(simulator, same, "same", same_latency, retried))
                nursery.start_soon(lambda: timed_sends(simulator, cross, "cross", cross_latency, retried))
            result["send_retries"] = len(retried)
            result["same_node_send_p99_ms"] = percentile(same_latency, 0.99) * 1000
            result["cross_node_send_p99_ms"] = percentile(cross_latency, 0.99) * 1000
            result["cross_vs_same_p99"] = result["cross_node_send_p99_ms"] / result["same_node_send_p99_ms"]

            victim = max(daemons, key=lambda d: result["placed"][d.name])
            survivors = [d for d in daemons if d is not victim]
            started = trio.current_time()
            victim.stop(signal.SIGKILL)
            with trio.fail_after(PHASE_TIMEOUT):
                owners = await settled(survivors, control, count)
            result["failover_s"] = trio.current_time() - started
            result["failed_over"] = result["placed"][victim.name]

            drained = max(survivors, key=lambda d: list(owners.values()).count(d.name))
            last = [d for d in survivors if d is not drained]
            moved = list(owners.values()).count(drained.name)
            result["drained_leases"] = await trio.to_thread.run_sync(leases_held, redis_url, drained.name)
            started = trio.current_time()
            drained.stop(signal.SIGTERM)
            samples: list[tuple[float, int]] = []
            with trio.fail_after(PHASE_TIMEOUT):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(connected_over_time, control, started, samples)
                    await released(redis_url, drained.name)
                    result["drain_release_s"] = trio.current_time() - started
                    await settled(last, control, count)
                    nursery.cancel_scope.cancel()
            result["drain_s"] = trio.current_time() - started
            result.update(drain_phases(samples, count))
            result["drained"] = moved
            with trio.fail_after(PHASE_TIMEOUT):
                result["drained_exit_code"] = await drained.process.wait()
            if result["drained_exit_code"] != 0:
                print(drained.log.read_text()[-5000:], file=sys.stderr)

            generated = (await control.call("traffic_stop"))["generated"]
            # The killed node comes back: at boot it stores what its journal held (receipted to
            # WhatsApp, never stored), for every session, wherever it runs now.
            journal = root / victim.name / "data" / "journal" / JOURNAL_FILE
            result["killed_journal_entries"] = len(await trio.to_thread.run_sync(read_pending, journal))
            await victim.client.aclose()
            started = trio.current_time()
            await victim.start()
            with trio.fail_after(PHASE_TIMEOUT):
                while await trio.to_thread.run_sync(read_pending, journal):
                    await trio.sleep(0.1)
            result["rejoin_replay_s"] = trio.current_time() - started
            outbound = len(same) + len(cross)
            with trio.move_on_after(STORE_DRAIN_TIMEOUT):
                while await stored_inbound(dsn, outbound) < generated:
                    await trio.sleep(0.5)
            stored = await stored_inbound(dsn, outbound)
            result["inbound_generated"] = generated
            result["lost"] = max(0, generated - stored)
            result["duplicated"] = max(0, stored - generated)
            stats = await control.stats()
            result["double_connects"] = stats.replaced
            # of the lost, how many WhatsApp still holds unacknowledged (never acked by any node:
            # delivered late, not dropped); the others were acknowledged and not stored
            result["undelivered"] = stats.queued
            if stats.queued:
                held = [await control.account(sid) for sid in sessions]
                print("undelivered:", [(a["session"], a["queued"], a["phase"]) for a in held if a["queued"]],
                      file=sys.stderr)
    finally:
        for daemon in daemons:
            daemon.stop(signal.SIGKILL)
            if daemon.client is not None:
                await daemon.client.aclose()
        await simulator.kill()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 sessions instead of 1,000")
    parser.add_argument("--sessions", type=int, help="sessions (default 1,000, 60 with --quick)")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (the daemons' logs)")
    args = parser.parse_args()
    count = args.sessions or (60 if args.quick else 1000)
    # On a tmpfs when there is one (as the tests do): this run measures the cluster, not fsync
    # (bench.store and bench.pipeline measure the store on disk), and on a shared 2-core machine
    # the commits' flushes would only add noise to every figure.
    postgres = PostgresServer.create(base_dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    redis = RedisServer()
    try:
        postgres.start()
        redis.start()
        dsn = postgres.create_database("failover")
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            result = trio.run(run, args.keep, dsn, redis.url, count)
        else:
            with tempfile.TemporaryDirectory(prefix="zapvisor-bench-failover-") as tmp:
                result = trio.run(run, Path(tmp), dsn, redis.url, count)
    finally:
        redis.close()
        postgres.destroy()
    result = {key: round(value, 2) if isinstance(value, float) else value for key, value in result.items()}
    result["targets"] = TARGETS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
