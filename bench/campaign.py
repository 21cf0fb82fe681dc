"""Campaign benchmark: a 10,000-recipient campaign over 20 simulated sessions, a kill -9 in the middle.

    python -m bench.campaign [--quick]

A ``zapvisor run`` subprocess (SQLite store, memory bus, simulated sessions, outbox pacing 0.05 s)
serves SESSIONS paired sessions. The bench creates one campaign through the REST API — RECIPIENTS
numbers (``--quick``: QUICK_RECIPIENTS, said so in the JSON) plus a few invalid and repeated ones,
a template with a variable, every session rotating, the pacing delay scaled down to DELAY seconds
(the default is 20-60 s) — and starts it. While it runs, an agent answers a customer on a session
busy with the campaign every AGENT_EVERY seconds (round robin over the sessions). When
KILL_AT of the recipients reached the simulator, the daemon gets kill -9 and is started again; the
campaign resumes from the store by itself. Figures (last line, one JSON object), all measured from
what the simulator received:

- ``recipients`` (listed numbers, invalid and repeated included), ``sent`` (distinct listed numbers
  that received the campaign's message), ``duplicated`` (messages beyond the first per number),
  ``skipped`` (what the campaign skipped: invalid numbers, repeats);
- ``pacing_violations``: two campaign messages of one session closer than DELAY's low end;
- ``agent_reply_p99_ms`` / ``_p50_ms``: an agent's REST send to the simulator receiving it, on a
  session busy with the campaign (replies around the kill, when no daemon listens, are not sent);
  ``agent_reply_idle_p50_ms`` / ``_p99_ms``: the same for BASELINE_S seconds before the campaign
  starts (idle sessions, same run): the baseline;
- ``unknown``: sends the kill caught with the driver (the campaign records them ``failed``, unknown
  outcome, never sent again; ``sent`` says whether WhatsApp had them), ``campaign_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

from actors.simulator import SimulatorProcess
from actors.store import SqliteBackend, open_store
from bench._servers import free_port
from bench.chaos import START_TIMEOUT, Daemon, provision

TARGETS = {"sent + skipped": "= recipients", "duplicated": "0", "pacing_violations": "0",
           "agent_reply_p99_ms": "< 2000"}

SESSIONS = 20
RECIPIENTS = 10_000
QUICK_RECIPIENTS = 2_000
INVALID_EVERY = 500
"""One number in this many is not a number (skipped invalid_number); as many again are repeats."""
DELAY = (0.1, 0.2)
"""Pacing delay, scaled down from the default 20-60 s."""
AGENT_EVERY = 0.25
BASELINE_S = 5.0
"""Seconds of agents' replies before the campaign starts: the same replies' latency on idle sessions."""
KILL_AT = 0.4
FINISH_TIMEOUT = 900.0
TOKEN = "campaign-bench-admin-token-0123456789"
TENANT = "bench"


def number(i: int) -> str:
    return f"55213{i:07d}"


def recipient_list(count: int) -> list[list[str]]:
    """Rows of (phone, name)."""
    people = [[number(i), f"c{i}"] for i in range(count)]
    for i in range(0, count, INVALID_EVERY):
        people += [[f"n/a {i}", "x"], [number(i), "again"]]
    return people


async def customer_tickets(control, store, sessions: list[str]) -> dict[str, int]:
    """One customer writes to each session: the tickets the agents answer."""
    for s, session in enumerate(sessions):
        await control.send_message(session, "hello?", sender=f"55214{s:07d}@s.whatsapp.net", push_name=f"C{s}")
    with trio.fail_after(START_TIMEOUT):
        while True:
            tickets = {t.session_id: t.id for t in await store.list_tickets(TENANT, limit=1000)}
            if all(s in tickets for s in sessions):
                return tickets
            await trio.sleep(0.2)


async def received(control, sessions: list[str]) -> dict[str, list[dict]]:
    return {session: await control.sent(session) for session in sessions}


async def agents(client: httpx.AsyncClient, tickets: dict[str, int], replies: dict[str, float],
                 paused: list[bool], label: str) -> None:
    """An agent reply every AGENT_EVERY seconds; its text (unique: ``label``) and the wall time it was sent."""
    sessions, i = sorted(tickets), 0
    while True:
        await trio.sleep(AGENT_EVERY)
        if paused[0]:
            continue
        session, text = sessions[i % len(sessions)], f"agent {label}{i}"
        i += 1
        at = time.time()
        try:
            reply = await client.post(f"/tenants/{TENANT}/tickets/{tickets[session]}/messages", json={"text": text},
                                      headers={"Idempotency-Key": text})
        except httpx.TransportError:
            continue
        if reply.status_code == 202:
            replies[text] = at


async def campaign_status(client: httpx.AsyncClient, campaign_id: int) -> dict | None:
    try:
        reply = await client.get(f"/tenants/{TENANT}/campaigns/{campaign_id}")
    except httpx.TransportError:
        return None
    return reply.json() if reply.status_code == 200 else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def latencies(logs: dict[str, list[dict]], replies: dict[str, float]) -> list[float]:
    """Milliseconds from each agent's REST send to the simulator receiving it."""
    answered = {entry["text"]: entry["ts"] for log in logs.values() for entry in log if entry["text"] in replies}
    return [(answered[text] - at) * 1000 for text, at in replies.items() if text in answered]


def tally(logs: dict[str, list[dict]], listed: set[str], replies: dict[str, float]) -> dict:
    campaign = [entry for log in logs.values() for entry in log if entry["text"].startswith("promo ")]
    numbers = [entry["to"].split("@")[0] for entry in campaign]
    violations = 0
    for log in logs.values():
        times = [entry["ts"] for entry in log if entry["text"].startswith("promo ")]
        violations += sum(1 for a, b in zip(times, times[1:]) if b - a < DELAY[0])
    waited = latencies(logs, replies)
    return {"sent": len(set(numbers) & listed), "duplicated": len(numbers) - len(set(numbers)),
            "pacing_violations": violations, "agent_replies": len(waited),
            "agent_replies_lost": len(replies) - len(waited),
            "agent_reply_p50_ms": round(percentile(waited, 0.5), 1),
            "agent_reply_p99_ms": round(percentile(waited, 0.99), 1)}


async def kill_and_finish(control, store, client: httpx.AsyncClient, daemon: Daemon, sessions: list[str],
                          campaign_id: int, count: int, paused: list[bool]) -> dict:
    """kill -9 once KILL_AT of the recipients were reached, start the daemon again, wait for the end."""
    while sum(len(log) for log in (await received(control, sessions)).values()) < KILL_AT * count:
        await trio.sleep(0.2)
    paused[0] = True  # no agent reply caught by the kill: they measure the campaign, not the death
    await trio.sleep(1.0)
    print("campaign: kill -9 of the daemon", file=sys.stderr)
    await daemon.kill9()
    await daemon.start()
    with trio.fail_after(START_TIMEOUT):
        while [(await store.get_session(s)).status for s in sessions] != ["connected"] * len(sessions):
            await trio.sleep(0.1)
    paused[0] = False
    with trio.fail_after(FINISH_TIMEOUT):
        while (status := await campaign_status(client, campaign_id)) is None or status["status"] != "finished":
            await trio.sleep(0.5)
    return status


async def bench(quick: bool, root: Path) -> dict:
    count = QUICK_RECIPIENTS if quick else RECIPIENTS
    people = recipient_list(count)
    simulator = SimulatorProcess(state_dir=root / "simulator", args=("--flush-interval", "0.2"))
    await simulator.start()
    port = free_port()
    data = root / "data"
    data.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")} | {
        "ZAPVISOR_NODE__DATA_DIR": str(data),
        "ZAPVISOR_SESSIONS__DRIVER": "simulated",
        "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator.url,
        "ZAPVISOR_OUTBOX__PACING_INTERVAL": "0.05",
        "ZAPVISOR_OUTBOX__PACING_JITTER": "0",
        "ZAPVISOR_API__ADMIN_TOKEN": TOKEN,
        "ZAPVISOR_API__PORT": str(port),
        "ZAPVISOR_LOGGING__LEVEL": "warning",
    }
    daemon = Daemon(env, root / "daemon.log", f"http://127.0.0.1:{port}")
    sessions = [f"m{i:02d}" for i in range(SESSIONS)]
    replies: dict[str, float] = {}
    idle_replies: dict[str, float] = {}
    paused = [False]
    try:
        async with simulator.control() as control, open_store(SqliteBackend(data / "zapvisor.sqlite3")) as store, \
                httpx.AsyncClient(base_url=daemon.url, timeout=30,
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            await provision(control, store, data, sessions, TENANT)
            await daemon.start()
            tickets = await customer_tickets(control, store, sessions)
            async with trio.open_nursery() as nursery:  # the baseline: agents' replies with no campaign
                nursery.start_soon(agents, client, tickets, idle_replies, paused, "idle ")
                await trio.sleep(BASELINE_S)
                nursery.cancel_scope.cancel()
            reply = await client.post(f"/tenants/{TENANT}/campaigns", json={
                "name": "bench", "text": "promo {{name}}", "sessions": sessions,
                "recipients": {"columns": ["phone", "name"], "rows": people},
                "pacing": {"delay": list(DELAY), "daily_cap": 100_000, "cold_daily_cap": 100_000}, "start": True})
            assert reply.status_code == 201, reply.text
            campaign_id, started = reply.json()["id"], trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(agents, client, tickets, replies, paused, "busy ")
                status = await kill_and_finish(control, store, client, daemon, sessions, campaign_id, count, paused)
                elapsed = trio.current_time() - started
                await trio.sleep(1.0)  # the last agent replies
                nursery.cancel_scope.cancel()
            logs = await received(control, sessions)
            unknown = sum(1 for r in await store.list_recipients(campaign_id, limit=1000, states=("failed",))
                          if (r.error or "").startswith("unknown"))
    finally:
        await daemon.stop()
        await simulator.kill()
    figures = tally(logs, {number(i) for i in range(count)}, replies)
    idle = latencies(logs, idle_replies)
    return {"recipients": len(people), **figures,
            "agent_reply_idle_p50_ms": round(percentile(idle, 0.5), 1),
            "agent_reply_idle_p99_ms": round(percentile(idle, 0.99), 1), "skipped": status["counts"]["skipped"],
            "skipped_reasons": {k: v for k, v in status["counts"].items() if k.startswith("skipped:")},
            "unknown": unknown, "daemon_counts": {k: status["counts"][k] for k in ("sent", "failed", "skipped")},
            "campaign_s": round(elapsed, 1), "sessions": SESSIONS, "delay_s": list(DELAY), "quick": quick}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_RECIPIENTS} recipients instead of {RECIPIENTS}")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="zapvisor-bench-campaign-") as tmp:
        result = trio.run(bench, args.quick, Path(tmp))
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["targets"] = TARGETS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
