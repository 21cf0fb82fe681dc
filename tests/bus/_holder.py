"""A separate process that holds a Redis lock, for the SIGSTOP fencing test.

``python -m tests.bus._holder URL RESOURCE TTL``: acquires the lock, prints
``{"token": N}``, then waits for a line on stdin; on it, tries to renew and to release the lock
(as a holder that was paused and has just woken up would) and prints
``{"renewed": bool, "released": bool}``.
"""

from __future__ import annotations

import json
import sys

import trio

from actors.bus import RedisBus, open_bus


async def main(url: str, resource: str, ttl: float) -> None:
    async with open_bus(RedisBus(url)) as bus:
        lock = await bus.acquire(resource, ttl, owner="paused-process")
        print(json.dumps({"token": lock.token}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        renewed = await bus.renew(lock)
        released = await bus.release(lock)
        print(json.dumps({"renewed": renewed, "released": released}), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]))
