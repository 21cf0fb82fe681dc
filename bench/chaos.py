"""Chaos benchmark: a real daemon on PostgreSQL and a Redis bus, under steady traffic, through faults.

    python -m bench.chaos [--quick]

A ``zapvisor run`` subprocess (PostgreSQL store, Redis bus, simulated sessions) serves SESSIONS
paired sessions. This process keeps steady traffic going the whole run: inbound messages sent
through the simulator's control channel (IN_RATE per second, round robin over the sessions and
their contacts) and outbound sends through the daemon's REST API (OUT_RATE per second, one ticket
per session, each with its Idempotency-Key). Meanwhile it injects, one after the other:

1. ``kill -9`` of the daemon, then starts it again (planned: not counted in ``daemon_exits``);
2. a PostgreSQL restart (``pg_ctl restart -m fast``);
3. PostgreSQL down for OUTAGE seconds (30; 12 with --quick, still longer than a write's 10 s
   timeout, so the store gate closes);
4. a Redis restart (it comes back empty, as a restarted cache node does);
5. poison: an inbound message and an outbound send carrying a lone surrogate.

After each fault, one probe message per session is sent at the moment the dependency is back (for
the kill, the moment the new daemon listens); ``recovery_s`` of the fault is when the last of them
is stored. Figures (last line, one JSON object):

- ``lost``: inbound messages the simulator accepted and the store never got, plus sends the API
  accepted (202) that never reached the simulator; ``duplicated``: the same, stored or sent more
  than once; ``reordered``: adjacent inversions within one conversation (inbound, store order vs
  send order) or one session's sends (simulator order vs accept order);
- ``daemon_exits``: times the daemon exited by itself (it is started again to finish the run);
- ``max_recovery_s`` over the dependency faults (see DEPENDENCY_FAULTS), and ``recovery_s`` per
  fault, the kill -9 and the poison included;
- ``poison_quarantined``: poison items refused at the API's edge (a 4xx naming the field), or
  that ended as dead letters or stored (with replacement characters) without taking anything
  down, of ``poison_sent``;
- ``breakers_open_at_end``: actors whose breaker is not closed at the end (``/supervision/tree``);
  ``daemon_errors``: the daemon's ERROR log lines, counted by their first words.

The simulator delivers like whatsmeow (a message leaves it for good when the driver's transport
receipts it, before any of our code ran); the driver journals each message before the session
sees it and replays what is left after a crash. ``lost_inbound`` therefore counts everything the
simulator handed over that the store lacks at the end: what zapvisor journaled and then lost *and*
what the kill -9 caught between the receipt and the journal append (the window measured by
``tests/flows/test_kill9.py``); the two are not told apart here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import httpx
import trio

from actors.simulator import SimulatorProcess
from actors.store import JobStatus, PostgresBackend, Queue, StoreError, open_store
from bench._redis import RedisServer
from bench._servers import PostgresServer, free_port

TARGETS = {"lost": "0", "duplicated": "0", "reordered": "0", "daemon_exits": "0", "max_recovery_s": "<= 5"}

SESSIONS = 10
CONTACTS = 4
"""Contacts writing to each session: 40 conversations."""
IN_RATE = 20.0
"""Inbound messages per second, over all sessions."""
OUT_RATE = 5.0
"""Outbound sends per second through the REST API, over all sessions."""
ADMIN_TOKEN = "chaos-bench-admin-token-0123456789"
TENANT = "chaos"
DAEMON = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['run']))"]
START_TIMEOUT = 90.0
"""Real seconds for the daemon to listen (imports, migrations, a loaded 2-core machine)."""
RECOVERY_TIMEOUT = 120.0
"""Real seconds after which a fault's probe still missing counts as never recovered (recovery = this)."""
DRAIN_TIMEOUT = 90.0
STALL = 10.0
"""Seconds without progress after which the drain stops waiting."""
DEPENDENCY_FAULTS = ("postgres_restart", "postgres_down", "redis_restart")
"""The faults ``max_recovery_s`` covers (dependency back → all sessions flowing). The kill -9's
recovery is reported apart: a killed daemon's session leases must expire (``sessions.lease_ttl``,
15 s) before the new process may take them, so that two processes never connect one account."""
POISON = "poison \ud800 lone surrogate"


def contact(session: int, i: int) -> str:
    return f"55218{session:03d}{i:05d}@s.whatsapp.net"


@attrs.define(eq=False)
class Daemon:
    """``zapvisor run`` with its log in a file; ``exits`` counts the exits nobody asked for."""

    env: dict[str, str]
    log: Path
    url: str
    process: trio.Process | None = None
    exits: int = 0
    planned: bool = False

    async def start(self) -> float:
        """Start it and wait until it listens; returns the trio time it did."""
        with open(self.log, "ab") as out:
            self.process = await trio.lowlevel.open_process(DAEMON, env=self.env, stdin=subprocess.DEVNULL,
                                                            stdout=out, stderr=out)
        self.planned = False  # only now: ``watch`` must never see the killed process as unplanned
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            with trio.fail_after(START_TIMEOUT):
                while True:
                    if self.process.poll() is not None:
                        raise RuntimeError(f"the daemon exited at start:\n{self.log.read_text()[-3000:]}")
                    try:
                        await client.get("/healthz")
                        return trio.current_time()
                    except httpx.TransportError:
                        await trio.sleep(0.1)

    async def kill9(self) -> None:
        self.planned = True
        self.process.kill()
        await self.process.wait()

    async def watch(self) -> None:
        """Count unplanned exits and start the daemon again (the run measures the rest)."""
        while True:
            await trio.sleep(0.2)
            if self.process is not None and self.process.poll() is not None and not self.planned:
                self.exits += 1
                tail = "\n    ".join(self.log.read_text(errors="replace").splitlines()[-4:])
                print(f"chaos: the daemon exited by itself ({self.process.returncode}); starting it again; "
                      f"its log ends:\n    {tail}", file=sys.stderr)
                await self.start()

    async def stop(self) -> None:
        self.planned = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                await self.process.wait()
            if self.process.poll() is None:
                self.process.kill()


@attrs.define(eq=False)
class Traffic:
    """What was sent, in order: inbound ids per conversation, accepted sends per session."""

    inbound: dict[tuple[str, str], list[str]] = attrs.field(factory=dict)  # (session, contact) -> ids
    outbound: dict[str, list[str]] = attrs.field(factory=dict)  # session -> texts (unique), accept order
    refused_out: int = 0
    poison_in: list[tuple[str, str]] = attrs.field(factory=list)  # (session, wa id)
    poison_out: list[str] = attrs.field(factory=list)  # idempotency keys the API accepted (202)
    poison_refused: int = 0  # poison sends the API refused at its edge (4xx): contained there

    def sent_in(self, session: str, jid: str, wa_id: str) -> None:
        self.inbound.setdefault((session, jid), []).append(wa_id)


async def inbound_loop(control, sessions: list[str], traffic: Traffic) -> None:
    i = 0
    while True:
        s = i % len(sessions)
        jid = contact(s, (i // len(sessions)) % CONTACTS)
        wa_id = await control.send_message(sessions[s], f"in {i}", sender=jid, push_name=f"C{s}")
        traffic.sent_in(sessions[s], jid, wa_id)
        i += 1
        await trio.sleep(1 / IN_RATE)


async def outbound_loop(daemon: Daemon, tickets: dict[str, int], traffic: Traffic) -> None:
    sessions = sorted(tickets)
    i = 0
    async with httpx.AsyncClient(base_url=daemon.url, timeout=15,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        while True:
            session = sessions[i % len(sessions)]
            text = f"out {i}"  # unique: WhatsApp (the simulator) names each send, so texts identify them
            if await send(client, tickets[session], f"out-{i}", text) == 202:
                traffic.outbound.setdefault(session, []).append(text)
            else:
                traffic.refused_out += 1
            i += 1
            await trio.sleep(1 / OUT_RATE)


async def send(client: httpx.AsyncClient, ticket_id: int, key: str, text: str) -> int | None:
    """POST a send; the HTTP status, None when the daemon is unreachable."""
    try:
        # json.dumps escapes a lone surrogate (httpx's own encoder would refuse to send it)
        response = await client.post(f"/tenants/{TENANT}/tickets/{ticket_id}/messages",
                                     content=json.dumps({"text": text}),
                                     headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    except httpx.TransportError:
        return None
    return response.status_code


async def stored(store, session: str, wa_id: str) -> bool:
    try:
        return await store.get_message(session, wa_id) is not None
    except (StoreError, OSError):
        return False  # the bench's own connection to a database that is coming back


async def recovery(control, store, sessions: list[str], since: float, traffic: Traffic) -> float:
    """Send one probe per session now; seconds from ``since`` until the last one is stored."""
    probes = []
    for s, session in enumerate(sessions):
        jid = contact(s, 0)
        wa_id = await control.send_message(session, "probe", sender=jid, push_name=f"C{s}")
        traffic.sent_in(session, jid, wa_id)
        probes.append((session, wa_id))
    with trio.move_on_after(RECOVERY_TIMEOUT):
        while probes:
            probes = [p for p in probes if not await stored(store, *p)]
            if probes:
                await trio.sleep(0.05)
        return trio.current_time() - since
    return RECOVERY_TIMEOUT


async def provision(control, store, data_dir: Path, sessions: list[str], tenant: str = TENANT) -> None:
    """Paired accounts, their credentials where the daemon reads them, sessions that were live (restored at
    boot), all of ``tenant``."""
    auth = data_dir / "auth"
    auth.mkdir(parents=True, exist_ok=True)
    await store.upsert_tenant(tenant, tenant.title())
    for session in sessions:
        creds = (await control.create_account(session, paired=True))["creds"]
        (auth / f"{session}.json").write_text(json.dumps({"creds": creds}))
        await store.upsert_session(session, tenant, session)
        await store.set_session_status(session, "connecting")


async def first_tickets(store, sessions: list[str]) -> dict[str, int]:
    with trio.fail_after(START_TIMEOUT):
        while True:
            tickets = {t.session_id: t.id for t in await store.list_tickets(TENANT, limit=1000)}
            if all(s in tickets for s in sessions):
                return tickets
            await trio.sleep(0.2)


def inversions(order: list[str], reference: list[str]) -> int:
    """Adjacent pairs of ``order`` that ``reference`` has the other way round."""
    rank = {wa_id: i for i, wa_id in enumerate(reference)}
    ranks = [rank[x] for x in order if x in rank]
    return sum(1 for a, b in zip(ranks, ranks[1:]) if b < a)


async def tally(control, store, traffic: Traffic) -> dict:
    """lost / duplicated / reordered over everything sent, once the traffic drained."""
    lost_in = lost_out = duplicated = reordered = 0
    by_ticket: dict[tuple[str, str], list[str]] = {}
    for ticket in await store.list_tickets(TENANT, limit=1000):
        jid = (await store.get_contact(ticket.contact_id)).jid
        messages, after = [], 0
        while True:
            page = await store.list_messages(ticket.id, after_id=after, limit=1000)
            messages += page
            if len(page) < 1000:
                break
            after = page[-1].id
        by_ticket.setdefault((ticket.session_id, jid), []).extend(m.wa_id for m in messages if not m.from_me)
    missing: dict[str, int] = {}
    for conversation, sent in traffic.inbound.items():
        got = by_ticket.get(conversation, [])
        poison = {wa_id for _, wa_id in traffic.poison_in}
        gone = len([x for x in set(sent) - set(got) if x not in poison])
        lost_in += gone
        if gone:
            missing[conversation[0]] = missing.get(conversation[0], 0) + gone
        duplicated += len(got) - len(set(got))
        reordered += inversions(got, sent)
    for session, accepted in traffic.outbound.items():
        delivered = [entry["text"] for entry in await control.sent(session)]
        gone = len(set(accepted) - set(delivered))
        lost_out += gone
        if gone:
            missing[f"{session} (sends)"] = gone
        duplicated += len(delivered) - len(set(delivered))
        reordered += inversions(delivered, accepted)
    return {"lost": lost_in + lost_out, "lost_inbound": lost_in, "lost_outbound": lost_out,
            "duplicated": duplicated, "reordered": reordered, "missing_by_session": missing}


async def drained(control, store, traffic: Traffic) -> None:
    """Wait until every accepted inbound is stored and every accepted send delivered, or nothing
    moved for STALL seconds (what is missing then is lost), or DRAIN_TIMEOUT."""
    missing, moved_at = None, trio.current_time()
    with trio.move_on_after(DRAIN_TIMEOUT):
        while True:
            counts = await tally(control, store, traffic)
            if counts["lost"] == 0:
                return
            if counts["lost"] != missing:
                missing, moved_at = counts["lost"], trio.current_time()
            elif trio.current_time() - moved_at >= STALL:
                return
            await trio.sleep(0.5)


async def poison_contained(store, traffic: Traffic) -> int:
    """Poison refused at the API's edge (4xx), or that ended as a dead letter (outbound) or stored
    (inbound), not stuck at a head of line."""
    contained = sum([await stored(store, *item) for item in traffic.poison_in])
    dead = {item.idempotency_key for item in await store.list_jobs(Queue.OUTBOX, JobStatus.DEAD, limit=1000)}
    return traffic.poison_refused + contained + sum(1 for key in traffic.poison_out if key in dead)


async def breakers_not_closed(daemon: Daemon) -> list[str]:
    """Paths of the actors whose breaker is open or half-open at the end."""
    async with httpx.AsyncClient(base_url=daemon.url, timeout=15,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        tree = (await client.get("/supervision/tree")).json()
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("breaker") in ("open", "half_open", "forced_open"):
                found.append(node.get("path", "?"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


def errors_logged(log: Path) -> dict[str, int]:
    """Error lines of the daemon's log by their first words (what went wrong, in brief)."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if " ERROR " in line or line.startswith("ERROR"):
            key = " ".join(line.split()[2:8])[:100]
            counts[key] = counts.get(key, 0) + 1
    return counts


async def chaos(quick: bool, root: Path, pg: PostgresServer, redis: RedisServer) -> dict:
    outage = 12.0 if quick else 30.0
    steady = 3.0 if quick else 15.0
    dsn = pg.create_database("chaos")
    data = root / "data"
    simulator = SimulatorProcess(state_dir=root / "simulator", args=("--flush-interval", "0.2"))
    await simulator.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")} | {
        "ZAPVISOR_NODE__DATA_DIR": str(data),
        "ZAPVISOR_STORE__BACKEND": "postgres",
        "ZAPVISOR_STORE__POSTGRES_DSN": dsn,
        "ZAPVISOR_BUS__BACKEND": "redis",
        "ZAPVISOR_BUS__REDIS_URL": redis.url,
        "ZAPVISOR_SESSIONS__DRIVER": "simulated",
        "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator.url,
        "ZAPVISOR_OUTBOX__PACING_INTERVAL": "0.05",
        "ZAPVISOR_OUTBOX__PACING_JITTER": "0",
        "ZAPVISOR_API__ADMIN_TOKEN": ADMIN_TOKEN,
        "ZAPVISOR_API__PORT": str(port),
        "ZAPVISOR_LOGGING__LEVEL": "warning",
    }
    daemon = Daemon(env, root / "daemon.log", f"http://127.0.0.1:{port}")
    sessions = [f"c{i:02d}" for i in range(SESSIONS)]
    traffic = Traffic()
    recoveries: dict[str, float] = {}
    try:
        async with simulator.control() as control, simulator.control() as probe_control, \
                open_store(PostgresBackend(dsn)) as store, trio.open_nursery() as nursery:
            await provision(control, store, data, sessions)
            await daemon.start()
            nursery.start_soon(daemon.watch)
            nursery.start_soon(inbound_loop, control, sessions, traffic)
            tickets = await first_tickets(store, sessions)
            nursery.start_soon(outbound_loop, daemon, tickets, traffic)
            await trio.sleep(steady)

            print("chaos: kill -9 of the daemon", file=sys.stderr)
            await daemon.kill9()
            await trio.sleep(1)
            listening = await daemon.start()
            recoveries["kill9"] = await recovery(probe_control, store, sessions, listening, traffic)
            await trio.sleep(steady)

            print("chaos: PostgreSQL restart", file=sys.stderr)
            await trio.to_thread.run_sync(pg.restart)
            recoveries["postgres_restart"] = await recovery(probe_control, store, sessions, trio.current_time(),
                                                            traffic)
            await trio.sleep(steady)

            print(f"chaos: PostgreSQL down {outage:.0f} s", file=sys.stderr)
            await trio.to_thread.run_sync(pg.stop)
            await trio.sleep(outage)
            await trio.to_thread.run_sync(pg.start)
            recoveries["postgres_down"] = await recovery(probe_control, store, sessions, trio.current_time(), traffic)
            await trio.sleep(steady)

            print("chaos: Redis restart", file=sys.stderr)
            await trio.to_thread.run_sync(redis.restart)
            recoveries["redis_restart"] = await recovery(probe_control, store, sessions, trio.current_time(), traffic)
            await trio.sleep(steady)

            print("chaos: poison in and out", file=sys.stderr)
            poisoned = sessions[-1]
            wa_id = await probe_control.send_message(poisoned, POISON, sender=contact(SESSIONS - 1, CONTACTS))
            traffic.poison_in.append((poisoned, wa_id))
            async with httpx.AsyncClient(base_url=daemon.url, timeout=15,
                                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
                status = await send(client, tickets[poisoned], "poison-out", POISON)
            if status == 202:
                traffic.poison_out.append("poison-out")
            elif status is not None and 400 <= status < 500:
                traffic.poison_refused += 1
            await trio.sleep(steady + 5)
            recoveries["poison"] = await recovery(probe_control, store, sessions, trio.current_time(), traffic)

            nursery.cancel_scope.cancel()  # the traffic stops; the daemon keeps running
        async with simulator.control() as control, open_store(PostgresBackend(dsn)) as store:
            await drained(control, store, traffic)
            counts = await tally(control, store, traffic)
            quarantined = await poison_contained(store, traffic)
        opened = await breakers_not_closed(daemon)
    finally:
        await daemon.stop()
        await simulator.kill()
    return {
        **counts,
        "daemon_exits": daemon.exits,
        "max_recovery_s": max(recoveries[fault] for fault in DEPENDENCY_FAULTS),
        "recovery_s": recoveries,
        "poison_quarantined": quarantined,
        "poison_sent": len(traffic.poison_in) + len(traffic.poison_out) + traffic.poison_refused,
        "breakers_open_at_end": opened,
        "daemon_errors": errors_logged(daemon.log),
        "inbound_sent": sum(len(ids) for ids in traffic.inbound.values()),
        "outbound_accepted": sum(len(ids) for ids in traffic.outbound.values()),
        "outbound_refused": traffic.refused_out,
        "outage_s": outage,
        "sessions": SESSIONS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 12 s PostgreSQL outage and short steady phases")
    args = parser.parse_args()
    started = time.monotonic()
    pg = PostgresServer.create()
    redis = RedisServer()
    try:
        pg.start()
        redis.start()
        with tempfile.TemporaryDirectory(prefix="zapvisor-bench-chaos-") as tmp:
            result = trio.run(chaos, args.quick, Path(tmp), pg, redis)
    finally:
        redis.close()
        pg.destroy()
    result = {key: round(value, 2) if isinstance(value, float) else value for key, value in result.items()}
    result["recovery_s"] = {key: round(value, 2) for key, value in result["recovery_s"].items()}
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["targets"] = TARGETS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
