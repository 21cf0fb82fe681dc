"""``zapvisor demo``: the simulator, a daemon, traffic and a fault, on this machine, in one command.

Starts the simulated WhatsApp server, then the daemon (SQLite in a temporary directory,
simulated sessions) with two sessions of a ``demo`` tenant paired through the simulator,
inbound traffic, and a fault every ``--fault-every`` seconds (a dropped connection, then a
WhatsApp-side logout that needs a new QR code). Prints the dashboard URL (with the admin
token) and an agent token, and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path

SESSIONS = ("demo-1", "demo-2")
TRAFFIC_RATE = 2.0
"""Inbound messages per second over both sessions: a lively dashboard, an idle CPU."""
READY_TIMEOUT = 30.0
"""Seconds for a demo session to show its QR code."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run simulator + daemon + traffic + faults and print the dashboard URL",
        description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--port", type=int, default=8080, help="API and dashboard port (default 8080)")
    parser.add_argument("--data-dir", type=Path, help="keep the demo's data here (default: a temporary directory)")
    parser.add_argument("--fault-every", type=float, default=20.0, metavar="SECONDS",
                        help="seconds between injected faults (default 20)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import trio

    if not 0 <= args.port <= 65535 or args.fault_every <= 0:
        print("zapvisor: demo: --port must be 0..65535 and --fault-every > 0", file=sys.stderr)
        return 2
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="zapvisor-demo-"))
    try:
        trio.run(_demo, args, data_dir)
    except KeyboardInterrupt:
        pass
    return 0


async def _demo(args: argparse.Namespace, data_dir: Path) -> None:
    import trio

    from actors.simulator import SimulatorProcess
    from config import load_settings

    from .._daemon import serve
    from .._logging import configure_logging
    from .._server import serve_api

    simulator = SimulatorProcess(state_dir=data_dir / "simulator", args=("--qr-interval", "20"))
    await simulator.start()
    try:
        env = {**os.environ, "ZAPVISOR_NODE__DATA_DIR": str(data_dir / "node"),
               "ZAPVISOR_SESSIONS__DRIVER": "simulated", "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator.url,
               "ZAPVISOR_API__PORT": str(args.port)}
        env.setdefault("ZAPVISOR_API__ADMIN_TOKEN", secrets.token_urlsafe(24))
        env.setdefault("ZAPVISOR_API__JWT_SECRET", secrets.token_urlsafe(48))
        settings = load_settings(None, env=env)
        configure_logging(settings.logging)

        async def scenario(node, stop, *, task_status=trio.TASK_STATUS_IGNORED):
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_run_scenario, node, simulator, args.fault_every)
                await stop.wait()
                nursery.cancel_scope.cancel()

        await serve(settings, (serve_api, scenario))
    finally:
        with trio.CancelScope(shield=True):
            await simulator.terminate()


async def _run_scenario(node, simulator, fault_every: float) -> None:
    import trio

    from actors.node import CreateSession, StartSession
    from actors.sessions import SessionStatus

    from .._auth import Authority

    api = node.settings.api
    await node.store.upsert_tenant("demo", "Demo helpdesk")
    users = await node.store.list_users("demo")
    user = users[0] if users else await node.store.create_user("demo", "agent@demo.test", "Demo agent")
    async with simulator.control() as control:
        for session_id in SESSIONS:
            await node.manager.ask(CreateSession("demo", session_id, session_id.replace("-", " ").title()))
            await node.manager.ask(StartSession(session_id), timeout=60.0)
            with trio.fail_after(READY_TIMEOUT):
                while (info := node.board.get(session_id)) is None or info.status is not SessionStatus.QR:
                    if info is not None and info.status is SessionStatus.CONNECTED:
                        break
                    await trio.sleep(0.1)
            if node.board.get(session_id).status is SessionStatus.QR:
                await control.scan(session_id)
        await control.traffic_start(rate=TRAFFIC_RATE, contacts=8, groups=1, media_share=0.0, seed=1)
        authority = Authority(api.admin_token, api.jwt_secret, api.jwt_ttl,
                              clock=lambda: node.system.wall_time(trio.current_time()))
        token, _ = authority.issue("demo", user.id, "agent")
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::") else api.host
        print(f"\nzapvisor demo is up\n  dashboard:   http://{host}:{api.port}/#token={api.admin_token}\n"
              f"  admin token: {api.admin_token}\n  agent token: {token}\n"
              f"  (tenant demo, user {user.id}; a fault every {fault_every:g} s; Ctrl-C stops)\n", flush=True)
        faults = (("connection dropped", lambda: control.drop(SESSIONS[0])),
                  ("logged out by the phone (needs a new QR)", lambda: control.logout(SESSIONS[1])))
        round_ = 0
        while True:
            await trio.sleep(fault_every)
            name, inject = faults[round_ % len(faults)]
            await inject()
            print(f"demo: fault injected: {name}", flush=True)
            round_ += 1
