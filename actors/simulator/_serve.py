"""Running the simulator: :func:`serve` inside trio, :func:`main` as a process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial

import attrs
import trio

from ._config import DELIVERY_MODES, SimulatorConfig
from ._media import MediaStore
from ._server import SimulatorServer
from ._state import State

# First line the process prints once it accepts connections; parents (test
# fixtures, ``zapvisor simulate``) wait for it to learn the URL.
READY_PREFIX = "SIMULATOR_READY "


async def serve(config: SimulatorConfig, *, task_status: trio.TaskStatus[SimulatorServer] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the simulated WhatsApp server until cancelled.

    Loads ``config.state_file`` (raises :class:`StateFileError` if it is not a
    simulator state file), listens, and reports the :class:`SimulatorServer`
    (``.url``, ``.port``) through ``task_status``. On cancellation the state is
    written one last time (shielded) before returning.
    """
    state = await State.load(config.state_file, config.flush_interval)
    server = SimulatorServer(config=config, state=state, media=MediaStore(config.media_dir))
    try:
        async with trio.open_nursery() as nursery:
            server.nursery = nursery
            await nursery.start(state.run)
            listeners = await nursery.start(partial(trio.serve_tcp, server.handle_tcp, config.port, host=config.host))
            server.port = listeners[0].socket.getsockname()[1]
            task_status.started(server)
    finally:
        with trio.CancelScope(shield=True):
            await state.write_now()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zapvisor simulate", description="Run the simulated WhatsApp server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed on the ready line)")
    parser.add_argument("--state-dir", default="data/simulator", help="accounts and offline queues live here")
    parser.add_argument("--qr-interval", type=float, default=20.0, help="seconds between QR codes")
    parser.add_argument("--qr-count", type=int, default=6, help="QR codes before 408")
    parser.add_argument("--pairing-code-ttl", type=float, default=180.0)
    parser.add_argument("--delivery-window", type=int, default=attrs.fields(SimulatorConfig).delivery_window.default,
                        help="unacked messages in flight per connection")
    parser.add_argument("--delivery", choices=DELIVERY_MODES, default=attrs.fields(SimulatorConfig).delivery.default,
                        help="whatsmeow: a message leaves the queue at the client's transport receipt (real "
                             "WhatsApp); idealised: only at the client's ack after its store commit")
    parser.add_argument("--receipt-delay", type=float, default=0.05)
    parser.add_argument("--read-delay", type=float, default=0.2)
    parser.add_argument("--handshake-delay", type=float, default=0.0)
    parser.add_argument("--auto-pair", action="store_true", help="pair unknown accounts without QR")
    parser.add_argument("--flush-interval", type=float, default=0.05)
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> SimulatorConfig:
    """Parse command-line arguments into a :class:`SimulatorConfig` (exits on bad input, like argparse)."""
    args = _parser().parse_args(argv)
    try:
        return SimulatorConfig(
            state_dir=args.state_dir, host=args.host, port=args.port, qr_interval=args.qr_interval,
            qr_count=args.qr_count, pairing_code_ttl=args.pairing_code_ttl, delivery_window=args.delivery_window,
            receipt_delay=args.receipt_delay, read_delay=args.read_delay, handshake_delay=args.handshake_delay,
            auto_pair=args.auto_pair, flush_interval=args.flush_interval, delivery=args.delivery,
        )
    except ValueError as exc:
        _parser().error(str(exc))
        raise


async def _main(config: SimulatorConfig) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve, config)
        print(f"{READY_PREFIX}{server.url}", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                return


def main(argv: Sequence[str] | None = None) -> int:
    """Process entry point (``python -m actors.simulator``, ``zapvisor simulate``).

    Runs until SIGTERM/SIGINT (state written on the way out), or until the
    control API's ``exit`` command. Returns the exit status.
    """
    config = config_from_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    trio.run(_main, config)
    return 0
