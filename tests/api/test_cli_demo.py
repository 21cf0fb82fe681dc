"""``zapvisor demo`` end to end: it comes up, prints a working dashboard URL, JWT secret and agent
token, injects faults that heal (every faulted session is connected again, logouts re-paired by the
demo's own simulated phone), and on Ctrl-C (SIGINT) stops cleanly and removes its temporary directory."""

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
DEMO_TIMEOUT = 240.0
"""Real seconds for the demo to start two processes, pair three sessions and heal four faults
on a loaded 2-core machine."""
FAULTS_SEEN = 4
"""One round of every fault kind (drop, 503, logout, replace)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _recovered(text: str) -> tuple[list[tuple[str, str]], bool]:
    """The faults injected so far, and whether each was followed by its session's recovery."""
    faults, healed = [], True
    for match in re.finditer(r"demo: fault injected: (.+) on (demo-\d)\n", text):
        faults.append((match.group(1), match.group(2)))
        healed &= f"demo: {match.group(2)} connected again" in text[match.end():]
    return faults, healed


async def test_demo_heals_its_faults_and_cleans_up_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
    env["TMPDIR"] = str(tmp_path)  # where the demo's temporary directory goes
    api_port, sim_port = _free_port(), _free_port()
    out = tmp_path / "demo.out"
    with open(out, "wb") as sink:
        demo = await trio.lowlevel.open_process(
            [ZAPVISOR, "demo", "--port", str(api_port), "--sim-port", str(sim_port), "--fault-every", "3"],
            env=env, stdout=sink, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        with trio.fail_after(DEMO_TIMEOUT):
            while True:
                faults, healed = _recovered(out.read_text())
                if len(faults) >= FAULTS_SEEN and healed:
                    break
                assert demo.poll() is None, out.read_text()
                await trio.sleep(0.2)
        text = out.read_text()
        assert {name for name, _ in faults} == {"connection dropped", "server error 503", "logged out by the phone",
                                                "replaced by another client"}
        assert "is logged_out: start it and scan its new QR code" in text  # the demo's phone re-paired it
        url, admin = re.search(r"dashboard: +(http://[\d.:]+)/#token=(\S+)", text).groups()
        agent = re.search(r"agent token: +(\S+)", text).group(1)
        secret = re.search(r"jwt secret: +(\S+)", text).group(1)
        assert jwt.decode(agent, secret, algorithms=["HS256"])["tenant"] == "demo"
        assert f"simulator:   ws://127.0.0.1:{sim_port}" in text
        data_dir = Path(re.search(r"data: +(\S+) \(removed on exit\)", text).group(1))
        assert data_dir.parent == tmp_path and data_dir.is_dir()

        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            assert (await client.get("/readyz")).status_code == 200
            tree = await client.get("/supervision/tree", headers={"Authorization": f"Bearer {admin}"})
            assert tree.status_code == 200
            sessions = (await client.get("/tenants/demo/sessions",
                                         headers={"Authorization": f"Bearer {agent}"})).json()
            assert sorted(s["id"] for s in sessions) == ["demo-1", "demo-2", "demo-3"]
        demo.send_signal(signal.SIGINT)
        with trio.fail_after(DEMO_TIMEOUT):
            assert await demo.wait() == 0
        assert not data_dir.exists()
    finally:
        if demo.poll() is None:
            demo.kill()
