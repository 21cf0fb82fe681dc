"""``zapvisor sim scan|pair|send|sent|status|fault``: be "the phone" and "the contacts" of a simulator.

Talks to a running simulated WhatsApp server (``zapvisor simulate``) over its control websocket
(``/control``, :class:`actors.simulator.SimulatorControl`): scan the QR code a session shows,
type a pairing code, send an inbound message as a contact, list what a session sent, inject
faults. ``--sim`` defaults to ``sessions.simulator_url`` from the settings (``--config``,
``ZAPVISOR_SESSIONS__SIMULATOR_URL``), the URL the daemon itself uses.

Exit codes: 0 done, 1 the simulator refused the command or could not be reached (one line on
stderr naming why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from config import load_settings

EXIT_FAILED = 1
"""The simulator refused the command or could not be reached (usage errors are 2, as everywhere)."""

CONTROL_TIMEOUT = 10.0
"""Seconds to reach the simulator and for one command: every control command answers at once."""

SCAN_WAIT = 10.0
"""Default seconds ``scan`` waits for the session to show a QR code (it may still be connecting)."""

POLL_INTERVAL = 0.2
"""How often ``scan`` looks at the session's phase while it waits."""

FAULTS = {
    "drop": "cut the session's connection without a goodbye (a network fault)",
    "disconnect": "close the connection with a WhatsApp reason code (--code, e.g. 428, 503, 515)",
    "logout": "log the account out from the phone: credentials die, the session ends with 401",
    "replace": "another client takes the account over: the session ends with 440",
    "ban": "ban the account for --seconds: the session ends with 402 and waits for the expiry",
    "unban": "lift a ban",
    "stall": "stop answering (keeps the socket open); --off resumes",
    "reset": "clear every fault (stalls, refused QR codes, slow connects)",
}
"""The faults ``sim fault`` injects, with what they do (the --help text)."""


class SimFailed(Exception):
    """The command failed; the message is for the user."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim", help="drive the simulated WhatsApp server: scan, pair, send as a contact, faults",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str, *, session: bool = True, **kwargs: Any) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_, description=help_, **kwargs)
        sub.add_argument("--config", type=Path, metavar="PATH", help="TOML settings file (for --sim's default)")
        sub.add_argument("--sim", metavar="URL", help="the simulator (default: sessions.simulator_url)")
        if session:
            sub.add_argument("session", help="the session id (as created in zapvisor)")
        return sub

    scan = action("scan", "scan the QR code the session shows (waits for it up to --wait seconds)")
    scan.add_argument("--wait", type=float, default=SCAN_WAIT, metavar="SECONDS",
                      help=f"seconds to wait for a QR code (default {SCAN_WAIT:g})")
    pair = action("pair", "type the pairing code the session shows (zapvisor sessions connect --phone ...)")
    pair.add_argument("code", help="the pairing code, e.g. ABCD-EFGH")
    send = action("send", "a contact sends a text message to the session's account")
    send.add_argument("text", help="the message")
    send.add_argument("--from", dest="sender", default="5521900000000", metavar="PHONE",
                      help="the contact's phone number, digits (default 5521900000000) or a full JID")
    send.add_argument("--name", help="the contact's WhatsApp display name")
    action("sent", "the messages the session sent, as the simulator received them (one JSON line each)")
    action("status", "the simulator's counters, or one account (paired, queued, connection phase)",
           session=False).add_argument("session", nargs="?", help="the session id (default: the counters)")
    fault = action("fault", "inject a fault", session=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                   epilog="faults:\n" + "\n".join(f"  {name:<11}{text}" for name, text in FAULTS.items()))
    fault.add_argument("fault", choices=tuple(FAULTS), metavar="FAULT", help=", ".join(FAULTS))
    fault.add_argument("session", nargs="?", help="the session (default: every session; logout, replace, ban "
                                                  "and unban need one)")
    fault.add_argument("--code", type=int, help="disconnect: the WhatsApp reason code")
    fault.add_argument("--seconds", type=float, help="ban: how long")
    fault.add_argument("--off", action="store_true", help="stall: resume instead")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import trio

    problem = _usage_problem(args)
    if problem:
        print(f"zapvisor: sim {args.action}: {problem}", file=sys.stderr)
        return 2
    url = args.sim or load_settings(args.config).sessions.simulator_url
    try:
        for line in trio.run(_run, url, args):
            print(line)
    except SimFailed as error:
        print(f"zapvisor: sim {args.action}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments argparse cannot check, or None."""
    if args.action == "scan" and args.wait < 0:
        return "--wait must be >= 0"
    if args.action != "fault":
        return None
    if args.fault in ("logout", "replace", "ban", "unban") and not args.session:
        return f"{args.fault} needs a session"
    if args.fault == "disconnect" and args.code is None:
        return "disconnect needs --code (a WhatsApp reason code such as 428, 503 or 515)"
    if args.fault == "ban" and (args.seconds is None or args.seconds <= 0):
        return "ban needs --seconds > 0"
    return None


async def _run(url: str, args: argparse.Namespace) -> list[str]:
    """Open a control connection, run the action; the lines to print. Raises SimFailed."""
    from actors.simulator import ControlConnectionError, ControlError, SimulatorControl

    try:
        async with SimulatorControl.open(url, timeout=CONTROL_TIMEOUT) as control:
            return await _act(control, args)
    except ControlConnectionError as error:
        raise SimFailed(f"cannot reach the simulator at {url}: {_cause(error)} "
                        f"(is `zapvisor simulate` running there?)") from None
    except ControlError as error:
        raise SimFailed(str(error)) from None


def _cause(error: BaseException) -> str:
    """The deepest non-empty message under ``error`` (trio-websocket wraps the OSError, message-less)."""
    found, seen = str(error), error
    while seen is not None:
        if str(seen) and not isinstance(seen, BaseExceptionGroup):
            found = str(seen)
        seen = seen.exceptions[0] if isinstance(seen, BaseExceptionGroup) else seen.__cause__ or seen.__context__
    return found


async def _act(control: Any, args: argparse.Namespace) -> list[str]:
    match args.action:
        case "scan":
            await _wait_for_qr(control, args.session, args.wait)
            return [f"{args.session}: scanned, paired as {await control.scan(args.session)}"]
        case "pair":
            return [f"{args.session}: pairing code accepted, paired as "
                    f"{await control.confirm_pairing(args.session, args.code)}"]
        case "send":
            sender = args.sender if "@" in args.sender else f"{args.sender.lstrip('+')}@s.whatsapp.net"
            message_id = await control.send_message(args.session, args.text, sender=sender, push_name=args.name)
            return [f"{args.session}: message {message_id} from {sender} queued"]
        case "sent":
            return [json.dumps(message) for message in await control.sent(args.session)]
        case "status" if args.session:
            return [json.dumps(await control.account(args.session))]
        case "status":
            return [json.dumps(await control.call("stats"))]
        case "fault":
            return [await _fault(control, args)]
    raise AssertionError(args.action)


async def _wait_for_qr(control: Any, session: str, wait: float) -> None:
    """Return once ``session`` shows a QR code; SimFailed naming its phase after ``wait`` seconds."""
    import trio

    from actors.simulator import ControlError

    phase = None
    with trio.move_on_after(wait):
        while True:
            try:
                phase = (await control.account(session))["phase"]
            except ControlError:
                phase = None  # the account appears with the session's first connection
            if phase == "qr":
                return
            await trio.sleep(POLL_INTERVAL)
    shown = "not connected to the simulator" if phase is None else f"in phase {phase!r}"
    raise SimFailed(f"session {session!r} shows no QR code after {wait:g} s ({shown}); "
                    f"start it with `zapvisor sessions connect`")


async def _fault(control: Any, args: argparse.Namespace) -> str:
    target = args.session or "every session"
    match args.fault:
        case "drop":
            return f"dropped {await control.drop(args.session)} connection(s) of {target}"
        case "disconnect":
            closed = await control.disconnect(args.code, args.session)
            return f"disconnected {closed} connection(s) of {target} with code {args.code}"
        case "logout":
            return f"logged out {args.session} ({await control.logout(args.session)} connection(s) closed)"
        case "replace":
            return f"replaced {args.session} ({await control.replace(args.session)} connection(s) closed)"
        case "ban":
            expires = await control.ban(args.session, seconds=args.seconds)
            return f"banned {args.session} until {expires:.0f} (epoch seconds)"
        case "unban":
            await control.unban(args.session)
            return f"unbanned {args.session}"
        case "stall":
            links = await control.stall(args.session, on=not args.off)
            return f"{'resumed' if args.off else 'stalled'} {target} ({links} connection(s))"
        case "reset":
            await control.reset_faults()
            return "every fault cleared"
    raise AssertionError(args.fault)
