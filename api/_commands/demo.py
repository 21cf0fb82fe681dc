"""``zapvisor demo``: the simulator, a daemon, traffic, faults and their recovery, in one command.

Starts the simulated WhatsApp server, then the daemon (SQLite in a temporary directory,
simulated sessions) with three sessions of a ``demo`` tenant paired through the simulator and
inbound traffic. Every ``--fault-every`` seconds one connected session meets a fault (a dropped
connection, a 503 from the server, a logout from the phone, another client taking over), and
the demo heals what the daemon deliberately leaves stopped, as an operator would: a
logged-out session is started again and its new QR code scanned on the simulated phone, a
replaced one is started again. It prints each fault and each recovery ("connected again after
N s"), so the dashboard stays mostly green. Prints the dashboard URL (with the admin token),
the JWT secret, an agent token, and runs until Ctrl-C; the temporary directory goes with it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

SESSIONS = ("demo-1", "demo-2", "demo-3")
TRAFFIC_RATE = 2.0
"""Inbound messages per second over all sessions: a lively dashboard, an idle CPU."""
READY_TIMEOUT = 60.0
"""Seconds for every demo session to be connected before the first fault."""
FAULTS = (("connection dropped", "drop"), ("server error 503", "503"),
          ("logged out by the phone", "logout"), ("replaced by another client", "replace"))
"""The faults, in rotation: (what the demo prints, what it asks the simulator)."""
HEAL = {"logged_out": "start it and scan its new QR code", "replaced": "start it again",
        "needs_auth": "start it and scan its QR code"}
"""Statuses the daemon leaves stopped on purpose (never fight WhatsApp), and how the demo heals them."""
DEMO_SETTINGS = {
    # A session faulted every few rounds has run long enough to be healthy again: its backoff
    # starts over and its breaker counts a success, so the rotation never opens a breaker...
    "ZAPVISOR_SUPERVISION__BACKOFF_RESET_AFTER": "5",
    # ...and a breaker opened anyway (a loaded machine) closes again within the minute.
    "ZAPVISOR_SUPERVISION__BREAKER_COOLDOWN": "30",
}
"""Settings the demo changes (unless set in the environment) so that it shows recovery."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run simulator + daemon + traffic + faults that heal, and print the dashboard URL",
        description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--port", type=int, default=8080, help="API and dashboard port (default 8080)")
    parser.add_argument("--sim-port", type=int, default=0,
                        help="the simulator's port (default: a free one; `zapvisor sim --sim ws://127.0.0.1:PORT`)")
    parser.add_argument("--data-dir", type=Path, help="keep the demo's data here (default: a temporary directory, "
                                                      "removed on exit)")
    parser.add_argument("--fault-every", type=float, default=20.0, metavar="SECONDS",
                        help="seconds between injected faults (default 20)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import trio

    if not (0 <= args.port <= 65535 and 0 <= args.sim_port <= 65535) or args.fault_every <= 0:
        print("zapvisor: demo: --port and --sim-port must be 0..65535 and --fault-every > 0", file=sys.stderr)
        return 2
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="zapvisor-demo-")) if temporary else args.data_dir
    try:
        trio.run(_demo, args, data_dir, temporary)
    except KeyboardInterrupt:
        pass
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


async def _demo(args: argparse.Namespace, data_dir: Path, temporary: bool) -> None:
    import trio

    from actors.simulator import SimulatorProcess
    from config import load_settings

    from .._daemon import serve
    from .._logging import configure_logging
    from .._server import serve_api

    simulator = SimulatorProcess(state_dir=data_dir / "simulator", args=("--qr-interval", "20"), port=args.sim_port)
    await simulator.start()
    try:
        env = {**DEMO_SETTINGS, **os.environ, "ZAPVISOR_NODE__DATA_DIR": str(data_dir / "node"),
               "ZAPVISOR_SESSIONS__DRIVER": "simulated", "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator.url,
               "ZAPVISOR_API__PORT": str(args.port)}
        env.setdefault("ZAPVISOR_API__ADMIN_TOKEN", secrets.token_urlsafe(24))
        env.setdefault("ZAPVISOR_API__JWT_SECRET", secrets.token_urlsafe(48))
        settings = load_settings(None, env=env)
        configure_logging(settings.logging)
        where = f"{data_dir} (removed on exit)" if temporary else str(data_dir)

        async def scenario(node, stop, *, task_status=trio.TASK_STATUS_IGNORED):
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_run_scenario, node, simulator, args.fault_every, where)
                await stop.wait()
                nursery.cancel_scope.cancel()

        await serve(settings, (serve_api, scenario))
    finally:
        with trio.CancelScope(shield=True):
            await simulator.terminate()


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


async def _run_scenario(node: Any, simulator: Any, fault_every: float, where: str) -> None:
    import trio

    from actors.node import CreateSession, StartSession
    from actors.sessions import SessionStatus

    from .._auth import Authority

    api = node.settings.api
    await node.store.upsert_tenant("demo", "Demo helpdesk")
    users = await node.store.list_users("demo")
    user = users[0] if users else await node.store.create_user("demo", "agent@demo.test", "Demo agent")
    async with simulator.control() as control, trio.open_nursery() as nursery:
        healer = Healer(node, control)
        changes = node.board.subscribe()
        nursery.start_soon(healer.run, changes)
        for session_id in SESSIONS:
            await node.manager.ask(CreateSession("demo", session_id, session_id.replace("-", " ").title()))
            await node.manager.ask(StartSession(session_id), timeout=60.0)
        with trio.fail_after(READY_TIMEOUT):
            while not all(healer.status(s) is SessionStatus.CONNECTED for s in SESSIONS):
                await trio.sleep(0.1)
        await control.traffic_start(rate=TRAFFIC_RATE, contacts=8, groups=1, media_share=0.0, seed=1)
        authority = Authority(api.admin_token, api.jwt_secret, api.jwt_ttl,
                              clock=lambda: node.system.wall_time(trio.current_time()))
        token, _ = authority.issue("demo", user.id, "agent")
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::") else api.host
        print(f"\nzapvisor demo is up\n  dashboard:   http://{host}:{api.port}/#token={api.admin_token}\n"
              f"  admin token: {api.admin_token}\n  agent token: {token}\n"
              f"  jwt secret:  {api.jwt_secret}\n"
              f"               (more agent tokens: ZAPVISOR_API__JWT_SECRET=<jwt secret> "
              f"zapvisor token --tenant demo --user {user.id})\n"
              f"  simulator:   {simulator.url} (zapvisor sim --sim {simulator.url} ...)\n"
              f"  data:        {where}\n"
              f"  (tenant demo, user {user.id}; a fault every {fault_every:g} s, each healed; Ctrl-C stops)\n",
              flush=True)
        round_ = 0
        while True:
            await trio.sleep(fault_every)
            session_id = SESSIONS[round_ % len(SESSIONS)]
            name, fault = FAULTS[round_ % len(FAULTS)]
            round_ += 1
            if healer.status(session_id) is not SessionStatus.CONNECTED or session_id in healer.pending:
                say(f"{session_id} is still recovering: no fault this round")
                continue
            healer.pending[session_id] = (name, trio.current_time(), False)
            await _inject(control, fault, session_id)
            say(f"fault injected: {name} on {session_id}")


async def _inject(control: Any, fault: str, session_id: str) -> None:
    match fault:
        case "drop":
            await control.drop(session_id)
        case "503":
            await control.disconnect(503, session_id)
        case "logout":
            await control.logout(session_id)
        case "replace":
            await control.replace(session_id)


class Healer:
    """Follows the status board: heals what the daemon leaves stopped, scans QR codes, reports recoveries.

    ``pending`` maps a faulted session to (fault name, trio time, seen down yet); the session
    counts as recovered when it is connected again after having left ``connected``.
    """

    def __init__(self, node: Any, control: Any) -> None:
        self.node = node
        self.control = control
        self.pending: dict[str, tuple[str, float, bool]] = {}

    def status(self, session_id: str) -> Any:
        info = self.node.board.get(session_id)
        return None if info is None else info.status

    async def run(self, changes: Any) -> None:
        """Act on every change of a demo session, until cancelled."""
        import trio

        while True:
            async with changes:
                async for info in changes:
                    if info.session_id in SESSIONS:
                        await self._act(info.session_id, str(info.status), trio.current_time())
            changes = self.node.board.subscribe()  # fell behind: the board closed our channel

    async def _act(self, session_id: str, status: str, now: float) -> None:
        from actors.node import StartSession
        from actors.simulator import ControlError
        from supervisor import ActorFailed, ActorStopped, AskTimeout

        fault = self.pending.get(session_id)
        if fault is not None and status != "connected":
            self.pending[session_id] = (fault[0], fault[1], True)
        elif fault is not None and fault[2]:
            del self.pending[session_id]
            say(f"{session_id} connected again {now - fault[1]:.1f} s after: {fault[0]}")
        if status in HEAL:
            say(f"{session_id} is {status}: {HEAL[status]}")
            try:
                await self.node.manager.ask(StartSession(session_id), timeout=60.0)
            except (AskTimeout, ActorStopped, ActorFailed) as error:
                say(f"could not start {session_id}: {type(error).__name__}")
        elif status == "qr":
            try:
                await self.control.scan(session_id)
            except ControlError as error:  # the code expired meanwhile: the next one is scanned
                say(f"could not scan {session_id}'s QR code: {error}")
