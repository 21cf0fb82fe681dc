"""Fencing against a real paused process: SIGSTOP past the TTL, SIGCONT, try to release."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import trio

from actors.bus import RedisBus, open_bus

ROOT = Path(__file__).resolve().parents[2]

TTL = 0.5  # seconds the stopped process's lock lives

#: Real-time bound for the helper process to start (imports) and answer, on a loaded machine.
PROCESS_TIMEOUT = 30


async def read_json_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> dict:
    with trio.fail_after(PROCESS_TIMEOUT):
        while b"\n" not in buffer:
            chunk = await stream.receive_some()
            assert chunk, "the holder process exited early"
            buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


async def test_a_stopped_process_cannot_release_the_lock_it_lost(redis_url):
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.bus._holder", redis_url, "ticket:9", str(TTL)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    buffer = bytearray()
    try:
        async with open_bus(RedisBus(redis_url)) as bus:
            stale_token = (await read_json_line(process.stdout, buffer))["token"]
            assert await bus.lock_owner("ticket:9") == "paused-process"

            process.send_signal(signal.SIGSTOP)
            await trio.sleep(TTL + 0.1)  # the lock expires while the holder is frozen
            fresh = await bus.acquire("ticket:9", 30, owner="fresh")
            process.send_signal(signal.SIGCONT)

            await process.stdin.send_all(b"go\n")
            assert await read_json_line(process.stdout, buffer) == {"renewed": False, "released": False}
            assert stale_token < fresh.token  # the store refuses the stale holder's writes
            assert await bus.lock_owner("ticket:9") == "fresh"
            assert await bus.release(fresh)
        with trio.fail_after(PROCESS_TIMEOUT):
            assert await process.wait() == 0
    finally:
        process.send_signal(signal.SIGCONT)
        if process.returncode is None:
            process.kill()
            await process.wait()
