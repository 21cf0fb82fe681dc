"""``zapvisor demo`` end to end: it comes up, prints a working dashboard URL and agent token,
injects faults, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import trio

ZAPVISOR = str(Path(sys.executable).with_name("zapvisor"))
DEMO_TIMEOUT = 90.0
"""Real seconds for the demo to start two processes, pair two sessions and inject a fault."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_demo_comes_up_injects_a_fault_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
    out = tmp_path / "demo.out"
    with open(out, "wb") as sink:
        demo = await trio.lowlevel.open_process(
            [ZAPVISOR, "demo", "--port", str(_free_port()), "--data-dir", str(tmp_path / "demo"),
             "--fault-every", "1"], env=env, stdout=sink, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        with trio.fail_after(DEMO_TIMEOUT):
            while "fault injected" not in out.read_text():
                assert demo.poll() is None, out.read_text()
                await trio.sleep(0.1)
        text = out.read_text()
        url, admin = re.search(r"dashboard: +(http://[\d.:]+)/#token=(\S+)", text).groups()
        agent = re.search(r"agent token: +(\S+)", text).group(1)
        assert jwt.decode(agent, options={"verify_signature": False})["tenant"] == "demo"
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            assert (await client.get("/readyz")).status_code == 200
            sessions = (await client.get("/tenants/demo/sessions",
                                         headers={"Authorization": f"Bearer {agent}"})).json()
            assert [s["id"] for s in sessions] == ["demo-1", "demo-2"]
            tree = await client.get("/supervision/tree", headers={"Authorization": f"Bearer {admin}"})
            assert tree.status_code == 200
        demo.send_signal(signal.SIGINT)
        with trio.fail_after(DEMO_TIMEOUT):
            assert await demo.wait() == 0
    finally:
        if demo.poll() is None:
            demo.kill()
