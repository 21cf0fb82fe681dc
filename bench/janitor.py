"""Benchmark the janitor against the hot path: inbound write latency while a run deletes a backlog.

    python -m bench.janitor [--quick]

For each backend (SQLite, and PostgreSQL on disk with fsync on): a store holds a backlog of old
messages (100,000; 20,000 with ``--quick``) that retention is about to delete. Inbound traffic
is what the pipeline writes per message — the conversation (contact + ticket, one transaction)
then the message — from 20 sessions at a steady 50 msg/s. Its write latency (both writes,
submit to COMMIT, as a session waits for it before acknowledging) is measured twice in the same
run: alone (``*_baseline_p99_ms``: 5 s before and 5 s after the run, after a warm-up), and while :meth:`actors.lifecycle.Sweeper.run_once`
deletes the whole backlog with the shipped batch size and pause (``*_during_p99_ms``). The
ratio ``*_p99_ratio`` is during / baseline (target: < 2: a run never stalls the hot path), and
``*_deleted_per_s`` how fast the backlog went.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import attrs
import trio

from actors.lifecycle import Sweeper
from actors.store import NewMessage, PostgresBackend, SqliteBackend, open_store
from bench._servers import PostgresServer
from config import load_settings

TARGETS = {"sqlite_p99_ratio": "< 2", "pg_p99_ratio": "< 2"}

SESSIONS = 20
RATE = 50.0
"""Inbound messages per second: a busy helpdesk node's steady traffic, within what PostgreSQL on disk
commits on the shared 2-core test machine under load (200 msg/s timed out there before any sweep)."""
DAY = 86400.0


@attrs.define
class Clock:
    """Wall time for the rows, shifted into the past while the backlog is written."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _backlog(start: int, stop: int, contact_id: int, ticket_id: int) -> list[NewMessage]:
    return [NewMessage(tenant_id="bench", session_id="old", wa_id=f"old{i:08d}", contact_id=contact_id,
                       ticket_id=ticket_id, from_me=False, body=f"old message {i}: olá, tudo bem?", sent_at=1.0)
            for i in range(start, stop)]


async def _traffic(store, seconds: float, tag: str) -> list[float]:
    """Inbound writes at RATE for ``seconds``; each one's latency (conversation + message), seconds."""
    latencies: list[float] = []
    interval = 1.0 / RATE

    async def one(i: int) -> None:
        started = trio.current_time()
        session = f"s{i % SESSIONS}"
        contact, found = await store.open_conversation("bench", session, f"55{i % 500:04d}@s.whatsapp.net",
                                                       "Bob", reopen_window=7200)
        await store.insert_message(NewMessage(tenant_id="bench", session_id=session, wa_id=f"{tag}{i:08d}",
                                              contact_id=contact.id, ticket_id=found.ticket.id, from_me=False,
                                              body=f"message {i}", sent_at=1.0))
        latencies.append(trio.current_time() - started)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        for i in range(int(seconds * RATE)):
            await trio.sleep_until(start + i * interval)
            nursery.start_soon(one, i)
    return latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000


async def _measure(backend, backlog: int, tmp: Path) -> dict:
    clock = Clock()
    settings = attrs.evolve(load_settings(env={}).retention, messages_days=7)
    async with open_store(backend, clock=clock) as store:
        await store.upsert_tenant("bench", "Bench")
        await store.upsert_session("old", "bench", "old")
        for s in range(SESSIONS):
            await store.upsert_session(f"s{s}", "bench", f"s{s}")
        clock.offset = -30 * DAY
        contact, found = await store.open_conversation("bench", "old", "5500@s.whatsapp.net", reopen_window=0)
        for start in range(0, backlog, 1000):
            await store.insert_messages(_backlog(start, min(start + 1000, backlog), contact.id, found.ticket.id))
        clock.offset = 0.0
        print(f"backlog of {backlog} written", file=sys.stderr)
        await _traffic(store, 3.0, "w")  # warm-up (the backlog's writes settle), not measured
        baseline = await _traffic(store, 5.0, "a")
        sweeper = Sweeper(settings, store, tmp / "media", tmp / "auth")
        during: list[float] = []
        report = None

        async def sweep() -> None:
            nonlocal report
            report = await sweeper.run_once()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sweep)
            tag = 0
            while report is None:  # traffic for as long as the run lasts
                during += await _traffic(store, 2.0, f"b{tag}-")
                tag += 1
        baseline += await _traffic(store, 5.0, "c")  # the baseline brackets the run: the machine's drift cancels
        return {
            "baseline_p50_ms": _p(baseline, 0.5), "baseline_p99_ms": _p(baseline, 0.99),
            "during_p50_ms": _p(during, 0.5), "during_p99_ms": _p(during, 0.99),
            "p99_ratio": _p(during, 0.99) / _p(baseline, 0.99),
            "deleted": report.rows.get("messages", 0), "run_s": report.duration,
            "deleted_per_s": report.rows.get("messages", 0) / report.duration,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20,000-message backlog (about a minute)")
    args = parser.parse_args()
    backlog = 20_000 if args.quick else 100_000
    result: dict = {"backlog": backlog, "rate_msg_s": RATE}
    with tempfile.TemporaryDirectory(prefix="zapvisor-bench-janitor-") as tmp:
        sqlite = trio.run(_measure, SqliteBackend(Path(tmp) / "janitor.sqlite3"), backlog, Path(tmp))
        result |= {f"sqlite_{k}": v for k, v in sqlite.items()}
        print(f"sqlite: {json.dumps(result)}", file=sys.stderr)
        server = PostgresServer.create()  # system temp dir: on disk, a COMMIT's fsync is real
        try:
            server.start()
            pg = trio.run(_measure, PostgresBackend(server.create_database("janitor")), backlog, Path(tmp))
        finally:
            server.destroy()
        result |= {f"pg_{k}": v for k, v in pg.items()}
    result = {key: round(value, 2) if isinstance(value, float) else value for key, value in result.items()}
    result["targets"] = TARGETS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
