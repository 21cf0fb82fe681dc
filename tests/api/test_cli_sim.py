"""``zapvisor sim``: the real CLI process driving a real simulator, with a simulated driver as the session.

Scanning and sending are also exercised end to end by the README walkthrough
(tests/api/test_walkthrough.py); here: pairing codes, messages as a named contact, faults the
session sees, and the one-line errors (exit 1 refused or unreachable, exit 2 bad usage).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

from actors.drivers import ENDING_EVENTS, Connected, Message, Qr
from tests.fixtures.simulator import driver_config, expect_event, open_simulator, pair, running_driver

ZAPVISOR = str(Path(sys.executable).with_name("zapvisor"))
CLI_TIMEOUT = 60.0
"""Real seconds for one CLI run: a Python start-up on a loaded 2-core machine."""


async def sim(*args: str, url: str | None = None) -> tuple[int, str, str]:
    """Run ``zapvisor sim ARGS`` (``--sim url`` appended when given); exit code, stdout, stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
    command = [ZAPVISOR, "sim", *args, *(("--sim", url) if url else ())]
    with trio.fail_after(CLI_TIMEOUT):
        done = await trio.run_process(command, env=env, capture_stdout=True, capture_stderr=True, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_scan_waits_for_the_qr_code_and_pair_types_the_pairing_code(tmp_path, session_id) -> None:
    # QR codes that last (FAST_ARGS shows three in 1.5 s): the CLI may take seconds to start here.
    async with open_simulator(tmp_path / "sim", "--qr-interval", "30") as simulator:
        config = driver_config(simulator.url, tmp_path / "auth")
        async with running_driver(config, session_id) as driver, trio.open_nursery() as nursery:
            result: list = []

            async def scan() -> None:
                result.append(await sim("scan", session_id, "--wait", "30", url=simulator.url))

            nursery.start_soon(scan)
            await trio.sleep(0.5)  # the CLI is waiting: the session is not even connected yet
            await driver.connect()
            await expect_event(driver, Connected)
        code, out, err = result[0]
        assert (code, err) == (0, "")
        assert out.startswith(f"{session_id}: scanned, paired as ") and out.endswith("@s.whatsapp.net\n")
        await _pair_with_code(simulator.url, config, session_id + "-p")


async def _pair_with_code(url: str, config, session_id: str) -> None:
    async with running_driver(config, session_id) as driver:
        await driver.connect()
        await expect_event(driver, Qr)
        pairing = await driver.pair_phone("+55 21 98765-4321")
        assert (await sim("pair", session_id, "WRONG-CODE", url=url))[0] == 1
        code, out, err = await sim("pair", session_id, pairing, url=url)
        assert (code, err) == (0, "")
        assert out.startswith(f"{session_id}: pairing code accepted, paired as ")
        await expect_event(driver, Connected)


async def test_send_as_a_named_contact_and_read_what_the_session_sent(
        simulator, simulator_control, simulated_driver_config, session_id) -> None:
    async with running_driver(simulated_driver_config, session_id) as driver:
        await pair(driver, simulator_control)
        code, out, err = await sim("send", session_id, "olá, tudo bem?", "--from", "+5521911112222",
                                   "--name", "Maria", url=simulator.url)
        assert (code, err) == (0, "")
        message = await expect_event(driver, Message)
        assert (message.text, message.sender_jid, message.push_name) == (
            "olá, tudo bem?", "5521911112222@s.whatsapp.net", "Maria")
        assert message.id in out

        sent = await driver.send_text("5521911112222@s.whatsapp.net", "reply", "OUT-1")
        code, out, _ = await sim("sent", session_id, url=simulator.url)
        assert code == 0
        # WhatsApp (the simulator) names the message, as it does for real: the id the send returned
        assert [(m["id"], m["text"]) for m in map(json.loads, out.splitlines())] == [(sent.message_id, "reply")]
        code, out, _ = await sim("status", session_id, url=simulator.url)
        assert (code, json.loads(out)["paired"], json.loads(out)["phase"]) == (0, True, "connected")


@pytest.mark.parametrize(("fault", "ending"), [
    (("drop",), ("Disconnected", None)), (("disconnect", "--code", "503"), ("Disconnected", 503)),
    (("logout", "{session}"), ("LoggedOut", 401)), (("replace", "{session}"), ("Replaced", 440))])
async def test_faults_reach_the_session(simulator, simulator_control, simulated_driver_config, session_id,
                                        fault, ending) -> None:
    async with running_driver(simulated_driver_config, session_id) as driver:
        await pair(driver, simulator_control)
        code, out, err = await sim("fault", *(arg.format(session=session_id) for arg in fault), url=simulator.url)
        assert (code, err) == (0, "")
        assert "1 connection(s)" in out
        ended = await expect_event(driver, *ENDING_EVENTS)
        assert (type(ended).__name__, ended.code) == ending


async def test_errors_are_one_line_and_usage_is_exit_2(simulator, session_id) -> None:
    code, out, err = await sim("scan", session_id, "--wait", "0.5", url=simulator.url)
    assert (code, out) == (1, "")
    assert err == (f"zapvisor: sim scan: session {session_id!r} shows no QR code after 0.5 s (not connected to "
                   f"the simulator); start it with `zapvisor sessions connect`\n")
    code, _, err = await sim("fault", "ban", session_id, "--seconds", "5", url=simulator.url)
    assert (code, err) == (1, f"zapvisor: sim fault: unknown session {session_id!r}\n")

    code, _, err = await sim("status", url="ws://127.0.0.1:1")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("zapvisor: sim status: cannot reach the simulator at ws://127.0.0.1:1: ")
    assert "Connection refused" in err

    for bad in (("fault", "logout"), ("fault", "disconnect"), ("fault", "ban", "x"), ("fault", "explode"),
                ("send",), ("scan", "x", "--wait", "-1")):
        code, _, err = await sim(*bad, url=simulator.url)
        assert code == 2, bad
        assert "Traceback" not in err and err.strip(), bad
