"""README's "Your first ticket in five minutes", executed exactly as written.

The ``sh`` blocks between ``<!-- walkthrough -->`` and ``<!-- /walkthrough -->`` are joined into one
script and run by ``bash -e`` in a temporary directory, with the venv's ``bin`` first on ``PATH``
(what ``source .venv/bin/activate`` does) and two free ports in ``SIM_PORT`` and
``ZAPVISOR_API__PORT`` (the script keeps ports set beforehand, as README says). The simulator and
the daemon it starts in the background are real processes, stopped with SIGTERM afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

README = Path(__file__).resolve().parents[2] / "README.md"
WALKTHROUGH = re.compile(r"<!-- walkthrough -->(.*?)<!-- /walkthrough -->", re.S)
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
SCRIPT_TIMEOUT = 240.0
"""Real seconds for the whole walkthrough: two process starts and a dozen CLI runs on a loaded machine."""
STOP_TIMEOUT = 30.0


def walkthrough_script() -> str:
    """The walkthrough's commands, in README order."""
    section = WALKTHROUGH.search(README.read_text())
    assert section is not None, "README has no <!-- walkthrough --> block"
    blocks = SH_BLOCK.findall(section.group(1))
    assert blocks, "the walkthrough has no sh block"
    return "\n".join(blocks)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_readme_walkthrough_reaches_a_replied_ticket(tmp_path: Path) -> None:
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough_script())
    api_port, sim_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_") or k == "ZAPVISOR_PG_BINDIR"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               SIM_PORT=str(sim_port), ZAPVISOR_API__PORT=str(api_port))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        # Its own process group: the servers it leaves in the background are stopped with it.
        shell = await trio.lowlevel.open_process(["bash", "-e", str(script)], cwd=tmp_path, env=env,
                                                 stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                                 start_new_session=True)
    try:
        with trio.fail_after(SCRIPT_TIMEOUT):
            status = await shell.wait()
        printed = out.read_text()
        assert status == 0, f"walkthrough failed ({status}):\n{printed}\n{err.read_text()[-3000:]}"

        frames = [json.loads(line) for line in printed.splitlines() if line.startswith('{"type":')]
        events = [(frame["type"], frame["seq"]) for frame in frames if "seq" in frame and frame["type"] != "joined"]
        assert [t for t, _ in events] == ["ticket.created", "message.created", "ticket.updated",  # one accept
                                          "outbox.updated", "outbox.updated", "message.created"]
        assert [seq for _, seq in events] == list(range(1, len(events) + 1))
        received = [json.loads(line) for line in printed.splitlines() if line.startswith('{"id": "')]
        assert [m["text"] for m in received] == ["Hi Maria, it ships today."]
        assert received[0]["to"] == "5521987654321@s.whatsapp.net"

        admin = {"Authorization": "Bearer first-ticket-admin-token"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=admin, timeout=30) as api:
            ticket = (await api.get("/tenants/acme/tickets/1")).json()
            assert (ticket["status"], ticket["user_id"], ticket["unread"]) == ("open", 1, 0)
            messages = (await api.get("/tenants/acme/tickets/1/messages")).json()["messages"]
            assert [(m["from_me"], m["body"]) for m in messages] == [
                (False, "Hello, where is my order?"), (True, "Hi Maria, it ships today.")]
    finally:
        _stop_group(shell.pid)
    with trio.fail_after(STOP_TIMEOUT):
        while _group_alive(shell.pid):
            await trio.sleep(0.1)


def _stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
