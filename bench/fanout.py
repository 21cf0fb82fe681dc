"""Websocket fan-out: the hub's ``/ws`` (Quart-Trio on Hypercorn) against a bare trio-websocket
broadcast server, the same clients, the same frames, in the same run.

Usage: ``python -m bench.fanout [--quick] [--clients N] [--seconds S]``

1,000 agents (500 with ``--quick``) join one tenant room; the publisher saturates with a closed
loop: it keeps :data:`WINDOW` events in flight (published but not yet received by every agent,
as the agents report), the same rule for both servers, so neither drops or lags anyone. The
agents live in a separate process (so their parsing does not share a core with the server) and
report what they received. Knobs (environment): FANOUT_WINDOW, FANOUT_AGENT_PROCESSES.

Both send each event as its own websocket text message. The hub's writer hands the frames it finds
queued to Hypercorn as one transport write (:func:`api._ws._write_through`); the bare server sends
one message per ``send_message``, trio-websocket's API. The agents (trio-websocket clients) offer no
extension, so neither server negotiates permessage-deflate: both send uncompressed frames.

The two servers alternate, hub, raw, raw, hub (:data:`ORDER`), each for half the time: on a shared
machine the load drifts within a run, and one hub phase followed by one raw phase would charge the
drift to whichever ran second. Each server's figures are summed over its two phases.

On a 2-core machine the Python agents cost about as much CPU as either server, so both figures are
bounded by the agents as much as by the servers; ``ratio`` compares the two servers under the
same client load, ``p99_ms`` includes WINDOW events of queueing by construction.

Reported (last line, one JSON object): ``clients``, ``events_per_s_delivered`` (sum over clients,
hub), ``raw_events_per_s`` (the bare server), ``ratio``, ``p99_ms`` (hub, publish -> received),
``raw_p99_ms``, ``events_published``, ``lagged`` (must be 0), ``seconds``; and each server's own
CPU time per frame delivered (``cpu_us_per_frame``, ``raw_cpu_us_per_frame``, ``cpu_ratio`` = raw
/ hub): this process's CPU while it publishes, which the agents' share of the cores does not move,
so it compares the two servers' costs even when the machine is too busy for the rates to.
Latency is measured with ``time.monotonic()``: one system-wide clock shared by the two processes
(trio's clock is per run, so it cannot be compared across processes).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import subprocess
import sys
import time
import types

import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

from actors.hub import Hub, Room
from api._auth import Authority
from api._ws import register_websocket

#: Events in flight (published, not yet received by every agent). Saturation = the pipeline is
#: never empty; a wider window only adds queueing delay (every agent must read every event).
WINDOW = int(os.environ.get("FANOUT_WINDOW", 8))

#: Agent processes. The agents' side (one trio-websocket client per agent, in Python) costs about
#: as much CPU as either server; on a 2-core machine shared with other work, more processes only
#: add contention (measured: 2 processes gave lower rates than 1 here). Raise it on a bigger box.
AGENT_PROCESSES = int(os.environ.get("FANOUT_AGENT_PROCESSES", 1))

#: Latency histogram resolution (the agents report counts per bucket; p99 is read from the merge).
BUCKET_MS = 1.0

#: Seconds between two progress reports of the agents (much less than one fan-out to 500 sockets).
PROGRESS = 0.002

#: Padding that makes a frame the size of a small chat event (~300 bytes).
PAD = "x" * 200

SECRET = "bench-secret-" + "x" * 32
ROOM = "tenant:bench"
END = "bench.end"

#: Seconds the agents' process may take to connect everyone (shared 2-core machine: at a load of
#: 15, 500 connections took over a minute, measured).
CONNECT_TIMEOUT = 180.0

#: The phases, each ``seconds / 2`` long (see the module docstring).
ORDER = ("hub", "raw", "raw", "hub")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 clients, shorter run (under a minute)")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--agents", help=argparse.SUPPRESS)  # internal: run the agents against this URL
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.clients = args.clients or (500 if args.quick else 1000)
    args.seconds = args.seconds or (5.0 if args.quick else 10.0)
    return args


# -- the agents (child process) ---------------------------------------------------------------


async def agents(url: str, clients: int, token: str | None) -> None:
    """Connect ``clients`` sockets, print "ready", then "p <i>" whenever every agent has received
    event ``i`` (the publisher's window), until the end event; then print the totals."""
    received, latencies = [0], []
    last = [-1] * clients
    all_ready, ended = trio.Event(), trio.Event()
    ready = [0]

    async def agent(n: int) -> None:
        headers = [(b"Authorization", f"Bearer {token}".encode())] if token else []
        async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
            if token:
                await ws.send_message(json.dumps({"op": "join", "room": ROOM}))
                await ws.get_message()  # joined
            ready[0] += 1
            if ready[0] == clients:
                all_ready.set()
            while True:
                frame = json.loads(await ws.get_message())
                if frame["type"] == END:
                    return
                if frame["type"] == "lagged":
                    raise RuntimeError("an agent lagged: the publisher's window is too wide")
                received[0] += 1
                latencies.append(time.monotonic() - frame["payload"]["t"])
                last[n] = frame["payload"]["i"]

    async def report() -> None:
        reported = -1
        while not ended.is_set():
            low = min(last)
            if low != reported:
                print(f"p {low}", flush=True)
                reported = low
            await trio.sleep(PROGRESS)

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as sockets:
            for n in range(clients):
                sockets.start_soon(agent, n)
            with trio.fail_after(CONNECT_TIMEOUT):
                await all_ready.wait()
            print("ready", flush=True)
            nursery.start_soon(report)
        ended.set()
    histogram = collections.Counter(int(latency * 1000 / BUCKET_MS) for latency in latencies)
    print(json.dumps({"received": received[0], "histogram": histogram}), flush=True)


# -- the servers (this process) -----------------------------------------------------------------


class RawServer:
    """The baseline: trio-websocket, one bounded deque per client, one JSON frame per event."""

    def __init__(self) -> None:
        self.queues: dict[object, collections.deque] = {}
        self.wakeups: dict[object, trio.Event] = {}

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        key = object()
        queue = self.queues[key] = collections.deque()
        self.wakeups[key] = trio.Event()
        try:
            while True:
                while not queue:
                    self.wakeups[key] = trio.Event()
                    await self.wakeups[key].wait()
                await ws.send_message(queue.popleft())
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            del self.queues[key], self.wakeups[key]

    def broadcast(self, frame: str) -> None:
        for key, queue in self.queues.items():
            queue.append(frame)
            self.wakeups[key].set()

    def depth(self) -> int:
        return max((len(q) for q in self.queues.values()), default=0)

    def count(self) -> int:
        return len(self.queues)


class HubServer:
    """The hub behind the real ``/ws`` route (auth, join, per-client queues) on Hypercorn."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.seq = 0

    def broadcast(self, frame_payload: dict) -> None:
        self.hub.publish(Room.tenant("bench"), "message.created", frame_payload)

    def depth(self) -> int:
        members = self.hub._members.get(Room.tenant("bench").key, ())
        return max((client.depth for client in members), default=0)

    def count(self) -> int:
        return len(self.hub._members.get(Room.tenant("bench").key, ()))


async def start_agents(url: str, clients: int, token: str | None) -> trio.Process:
    command = [sys.executable, "-m", "bench.fanout", "--agents", url, "--clients", str(clients)]
    if token:
        command += ["--token", token]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, env=env)


async def read_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    while b"\n" not in buffer:
        chunk = await stream.receive_some()
        if not chunk:
            raise RuntimeError("the agents' process ended early")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


async def measure(server, url: str, clients: int, seconds: float, token: str | None, publish) -> dict:
    """Run the agents against ``url``, publish at saturation for ``seconds``, return their totals."""
    shares = [clients // AGENT_PROCESSES + (n < clients % AGENT_PROCESSES) for n in range(AGENT_PROCESSES)]
    processes = [await start_agents(url, share, token) for share in shares]
    buffers = [bytearray() for _ in processes]
    progress, moved = [-1] * len(processes), [trio.Event()]
    finals: list[dict] = []

    async def follow(n: int) -> None:
        while True:
            line = await read_line(processes[n].stdout, buffers[n])
            if line.startswith("p "):
                progress[n] = int(line[2:])
                moved[0].set()
            else:
                finals.append(json.loads(line))
                return

    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            for n, process in enumerate(processes):
                assert await read_line(process.stdout, buffers[n]) == "ready"
            while server.count() < clients:
                await trio.sleep(0.01)
        async with trio.open_nursery() as nursery:
            for n in range(len(processes)):
                nursery.start_soon(follow, n)
            published, started, cpu_started = 0, trio.current_time(), time.process_time()
            deadline = started + seconds
            while trio.current_time() < deadline:
                while published - 1 - min(progress) < WINDOW:
                    publish({"t": time.monotonic(), "i": published, "pad": PAD})
                    published += 1
                moved[0] = trio.Event()
                with trio.move_on_at(deadline):
                    await moved[0].wait()
            elapsed, cpu = trio.current_time() - started, time.process_time() - cpu_started
            publish(None)  # the end marker
            with trio.fail_after(CONNECT_TIMEOUT):
                for process in processes:
                    await process.wait()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
    histogram: collections.Counter = collections.Counter()
    for final in finals:
        histogram.update({int(bucket): count for bucket, count in final["histogram"].items()})
    received = sum(final["received"] for final in finals)
    return {"published": published, "received": received, "elapsed": elapsed, "cpu": cpu, "histogram": histogram}


def combine(phases: list[dict]) -> dict:
    """One server's phases summed: events per second, p99 over every latency, CPU per frame."""
    histogram: collections.Counter = collections.Counter()
    for phase in phases:
        histogram.update(phase["histogram"])
    received = sum(phase["received"] for phase in phases)
    return {
        "published": sum(phase["published"] for phase in phases),
        "per_s": received / sum(phase["elapsed"] for phase in phases),
        "p99_ms": percentile(histogram, 0.99),
        "cpu_us_per_frame": 1e6 * sum(phase["cpu"] for phase in phases) / max(1, received),
    }


def percentile(histogram: collections.Counter, fraction: float) -> float:
    """The upper edge (ms) of the bucket holding the ``fraction`` quantile."""
    total, seen = sum(histogram.values()), 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= fraction * total:
            return (bucket + 1) * BUCKET_MS
    return float("nan")


async def main(args: argparse.Namespace) -> dict:
    hub = Hub(node_id="bench")
    authority = Authority(None, SECRET, 3600.0, clock=time.time)
    token = authority.issue("bench", 1)[0]
    app = QuartTrio(__name__)
    app.extensions["zapvisor"] = types.SimpleNamespace(authority=authority, websocket_clients=lambda: 0)
    register_websocket(app, types.SimpleNamespace(hub=hub))
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.websocket_ping_interval = None
    raw = RawServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        urls = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=trio.sleep_forever))
        hub_url = urls[0].replace("http://", "ws://") + "/ws"
        raw_listener = await nursery.start(functools.partial(
            trio_websocket.serve_websocket, raw.handler, "127.0.0.1", 0, ssl_context=None))
        raw_url = f"ws://127.0.0.1:{raw_listener.port}/"
        hub_server = HubServer(hub)

        def publish_hub(payload: dict | None) -> None:
            if payload is None:
                hub.publish(Room.tenant("bench"), END, {})
            else:
                hub_server.broadcast(payload)

        def publish_raw(payload: dict | None) -> None:
            frame = {"type": END, "payload": {}} if payload is None else {
                "type": "message.created", "room": ROOM, "seq": payload["i"] + 1, "payload": payload,
                "at": time.time()}
            raw.broadcast(json.dumps(frame, separators=(",", ":")))

        targets = {"hub": (hub_server, hub_url, token, publish_hub), "raw": (raw, raw_url, None, publish_raw)}
        phases: dict[str, list[dict]] = {"hub": [], "raw": []}
        for name in ORDER:
            server, url, key, publish = targets[name]
            phases[name].append(await measure(server, url, args.clients, args.seconds / 2, key, publish))
        hub_result, raw_result = combine(phases["hub"]), combine(phases["raw"])
        nursery.cancel_scope.cancel()
    return {
        "clients": args.clients,
        "events_per_s_delivered": round(hub_result["per_s"]),
        "raw_events_per_s": round(raw_result["per_s"]),
        "ratio": round(hub_result["per_s"] / raw_result["per_s"], 3),
        "p99_ms": round(hub_result["p99_ms"], 1),
        "raw_p99_ms": round(raw_result["p99_ms"], 1),
        "events_published": hub_result["published"],
        "raw_events_published": raw_result["published"],
        "lagged": hub.statistics().lagged,
        "seconds": args.seconds,
        "cpu_us_per_frame": round(hub_result["cpu_us_per_frame"], 1),
        "raw_cpu_us_per_frame": round(raw_result["cpu_us_per_frame"], 1),
        "cpu_ratio": round(raw_result["cpu_us_per_frame"] / hub_result["cpu_us_per_frame"], 3),
    }


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if arguments.agents:
        trio.run(agents, arguments.agents, arguments.clients, arguments.token)
    else:
        begun = time.monotonic()
        outcome = trio.run(main, arguments)
        outcome["wall_s"] = round(time.monotonic() - begun, 1)
        print(json.dumps(outcome))
