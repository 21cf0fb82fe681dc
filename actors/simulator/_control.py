"""The control API (websocket path ``/control``): scripting, fault injection, stats.

Each command is a ``cmd_<name>`` coroutine of :class:`Commands`; its keyword
arguments are the request's ``args``. Requests are handled one at a time per
control connection, in order. The Python client is
:class:`actors.simulator.SimulatorControl`, whose methods mirror these commands
one to one.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import os
from typing import TYPE_CHECKING, Any

import attrs
import trio_websocket

from ._errors import ControlError
from ._kinds import check as check_kind
from ._identity import IdentityCommands
from ._link import encode
from ._media import sha256_hex
from ._model import Faults, wall_clock
from ._state import Account, new_credentials
from ._traffic import TrafficSpec, build_message, contact_jid

if TYPE_CHECKING:
    from ._link import Link
    from ._server import SimulatorServer

PRESENCE_STATES = ("available", "unavailable", "composing", "recording", "paused")
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")


@attrs.define(eq=False)
class Commands(IdentityCommands):
    """The control commands of one simulator (see the package docstring for each)."""

    server: SimulatorServer

    def _account(self, session: str) -> Account:
        account = self.server.state.accounts.get(session)
        if account is None:
            raise ControlError(f"unknown session {session!r}")
        return account

    def _live(self, session: str) -> Link:
        link = self.server.links.get(session)
        if link is None:
            raise ControlError(f"session {session!r} is not connected")
        return link

    # -- inspection ----------------------------------------------------------------

    async def cmd_stats(self) -> dict[str, Any]:
        stats = attrs.asdict(self.server.stats)
        accounts = self.server.state.accounts.values()
        stats["accounts"] = len(self.server.state.accounts)
        stats["paired_accounts"] = sum(1 for account in accounts if account.paired)
        stats["queued"] = sum(len(account.queue) for account in accounts)
        stats["traffic_running"] = self.server.traffic_scope is not None
        return stats

    async def cmd_account(self, session: str) -> dict[str, Any]:
        account = self._account(session)
        link = self.server.links.get(session)
        return {"session": session, "jid": account.jid, "paired": account.paired, "creds": account.creds,
                "banned_until": account.banned_until, "queued": len(account.queue),
                "queued_ids": list(account.queue), "pending_events": len(account.events),
                "phase": None if link is None else link.phase, "stalled": bool(link and link.stalled)}

    async def cmd_sent(self, session: str) -> list[dict[str, Any]]:
        return self.server.sent_log(session)

    async def cmd_flush(self) -> None:
        await self.server.state.flush()

    # -- accounts and pairing ------------------------------------------------------

    async def cmd_create_account(self, session: str, paired: bool = True) -> dict[str, Any]:
        """Provision an account (benchmarks); returns its credentials when paired."""
        account = self.server.state.account(session)
        if paired and account.creds is None:
            account.creds = new_credentials()
            self.server.state.changed()
        await self.server.state.flush()
        return {"jid": account.jid, "creds": account.creds}

    async def cmd_scan(self, session: str) -> dict[str, Any]:
        link = self._live(session)
        if link.phase != "qr":
            raise ControlError(f"session {session!r} is not showing a QR code (phase {link.phase})")
        await self.server.pair(link)
        return {"jid": link.account.jid}

    async def cmd_confirm_pairing(self, session: str, code: str) -> dict[str, Any]:
        link = self._live(session)
        if link.phase != "pairing" or link.pairing_code != code:
            raise ControlError(f"session {session!r} has no pending pairing code {code!r}")
        await self.server.pair(link)
        return {"jid": link.account.jid}

    # -- contacts ------------------------------------------------------------------

    async def cmd_send_message(self, session: str, text: str = "", sender: str | None = None,
                               chat: str | None = None, media: dict[str, Any] | None = None,
                               message_id: str | None = None, push_name: str | None = None,
                               from_me: bool = False, quoted_id: str | None = None, kind: str = "text",
                               payload: dict[str, Any] | None = None,
                               target_id: str | None = None) -> dict[str, Any]:
        """Queue one inbound message (of any kind, or an operation on ``target_id``); returns once
        it is durable (survives kill -9)."""
        self._account(session)
        check_kind(kind, payload, target_id)
        wire_media = None
        if media is not None:
            wire_media = await self._store_media(media)
        message = build_message(sender=sender or contact_jid(0), timestamp=wall_clock(), text=text, media=wire_media,
                                chat=chat, message_id=message_id, push_name=push_name, from_me=from_me,
                                quoted_id=quoted_id, kind=kind, payload=payload, target_id=target_id)
        self.server.enqueue(session, message)
        await self.server.state.flush()
        return {"id": message["id"], "media_ref": None if wire_media is None else wire_media["ref"]}

    async def _store_media(self, media: dict[str, Any]) -> dict[str, Any]:
        try:
            data = base64.b64decode(media["data"], validate=True)
            kind, mimetype = media["kind"], media["mimetype"]
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ControlError(f"media needs base64 'data', 'kind' and 'mimetype' ({exc})") from exc
        if kind not in MEDIA_KINDS:
            raise ControlError(f"media kind must be one of {MEDIA_KINDS}, got {kind!r}")
        ref = await self.server.media.put(data)
        return {"ref": ref, "kind": kind, "mimetype": mimetype, "size": len(data),
                "file_name": media.get("file_name"), "sha256": sha256_hex(data)}

    async def cmd_presence(self, session: str, jid: str, state: str, chat: str | None = None,
                           last_seen: float | None = None) -> None:
        if state not in PRESENCE_STATES:
            raise ControlError(f"presence state must be one of {PRESENCE_STATES}, got {state!r}")
        self._account(session)
        await self.server.push_event(session, {"ev": "presence", "jid": jid, "state": state, "chat": chat,
                                               "last_seen": last_seen})

    async def cmd_undecryptable(self, session: str, sender: str | None = None, chat: str | None = None,
                                unavailable: bool = False) -> dict[str, Any]:
        self._account(session)
        message = build_message(sender=sender or contact_jid(0), timestamp=wall_clock(), chat=chat)
        await self.server.push_event(session, {"ev": "undecryptable", "id": message["id"], "chat": message["chat"],
                                               "sender": message["sender"], "ts": message["ts"],
                                               "unavailable": unavailable})
        return {"id": message["id"]}

    async def cmd_traffic_start(self, **spec: Any) -> None:
        try:
            traffic = TrafficSpec(**spec)
        except (TypeError, ValueError) as exc:
            raise ControlError(f"bad traffic spec: {exc}") from exc
        await self.server.nursery.start(self.server.run_traffic, traffic)

    async def cmd_traffic_stop(self) -> dict[str, Any]:
        return {"stopped": self.server.stop_traffic(), "generated": self.server.traffic_run_generated}

    # -- faults --------------------------------------------------------------------

    async def cmd_drop(self, session: str | None = None) -> dict[str, int]:
        """Cut TCP connections without any goodbye (a network fault)."""
        return {"closed": self.server.end_links(session, None, "dropped")}

    async def cmd_disconnect(self, code: int, session: str | None = None, reason: str = "",
                             expires_at: float | None = None) -> dict[str, int]:
        """Close connections with a WhatsApp reason code (account state unchanged)."""
        if not 100 <= code <= 999:
            raise ControlError(f"code must be a 3-digit WhatsApp reason code, got {code!r}")
        extra = {} if expires_at is None else {"expires_at": expires_at}
        return {"closed": self.server.end_links(session, code, reason or f"disconnected ({code})", **extra)}

    async def cmd_stall(self, session: str | None = None, on: bool = True) -> dict[str, int]:
        """Stop (or resume) answering pings and delivering, keeping sockets open.

        A stalled target that connects anew gets no answer at all: its
        handshake times out on the client side.
        """
        faults = self.server.faults
        if session is None:
            faults.stall_all = on
            faults.stalled.clear()
        elif on:
            faults.stalled.add(session)
        else:
            faults.stalled.discard(session)
        links = self.server.targets(session)
        for link in links:
            link.set_stalled(faults.is_stalled(link.account.session_id))
        return {"links": len(links)}

    async def cmd_lose_answers(self, session: str, count: int = 1) -> None:
        """The next ``count`` sends of ``session`` are accepted (logged, delivered, receipted) but
        the connection drops before their answer: the client cannot know WhatsApp has them."""
        if not isinstance(count, int) or count < 0:
            raise ControlError(f"count must be an integer >= 0, got {count!r}")
        if count:
            self.server.faults.lost_answers[session] = count
        else:
            self.server.faults.lost_answers.pop(session, None)

    async def cmd_slow_connect(self, seconds: float, session: str | None = None) -> None:
        if seconds < 0:
            raise ControlError(f"seconds must be >= 0, got {seconds!r}")
        if session is None:
            self.server.faults.slow_all = seconds
        else:
            self.server.faults.slow[session] = seconds

    async def cmd_ban(self, session: str, until: float | None = None, seconds: float | None = None,
                      ban_code: int | None = None) -> dict[str, Any]:
        """Ban an account until ``until`` (epoch s) or for ``seconds``; its connection ends with 402."""
        if (until is None) == (seconds is None):
            raise ControlError("ban needs exactly one of 'until' or 'seconds'")
        account = self._account(session)
        account.banned_until = until if until is not None else wall_clock() + seconds
        account.ban_code = ban_code
        self.server.state.changed()
        await self.server.state.flush()
        closed = self.server.end_links(session, 402, "temporarily banned",
                                               expires_at=account.banned_until, ban_code=ban_code)
        return {"closed": closed, "expires_at": account.banned_until}

    async def cmd_unban(self, session: str) -> None:
        account = self._account(session)
        account.banned_until = account.ban_code = None
        self.server.state.changed()

    async def cmd_replace(self, session: str) -> dict[str, int]:
        return {"closed": self.server.end_links(session, 440, "replaced by another client")}

    async def cmd_logout(self, session: str) -> dict[str, int]:
        """Log the account out from "the phone": credentials die, the connection ends with 401."""
        account = self._account(session)
        account.creds = None
        self.server.state.changed()
        await self.server.state.flush()
        return {"closed": self.server.end_links(session, 401, "logged out from the phone")}

    async def cmd_refuse_qr(self, on: bool = True, session: str | None = None, code: int = 408) -> None:
        """Refuse (or allow again) QR pairing: unpaired hellos are closed with ``code``."""
        faults = self.server.faults
        if session is None:
            faults.refuse_qr_all = code if on else None
            faults.refuse_qr.clear()
        elif on:
            faults.refuse_qr[session] = code
        else:
            faults.refuse_qr.pop(session, None)

    async def cmd_outdated(self, on: bool = True, session: str | None = None) -> None:
        """Declare the client outdated: hellos are closed with 405."""
        faults = self.server.faults
        if session is None:
            faults.outdated_all = on
            faults.outdated.clear()
        elif on:
            faults.outdated.add(session)
        else:
            faults.outdated.discard(session)

    async def cmd_reset_faults(self) -> None:
        self.server.faults = Faults()
        for link in self.server.links.values():
            link.set_stalled(False)

    async def cmd_exit(self, code: int = 0, flush: bool = True) -> None:
        """Exit the process at once (after writing state when ``flush``); the reply is sent first."""
        if flush:
            await self.server.state.write_now()
        raise _Exit(code)


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


async def serve_control(server: SimulatorServer, ws: trio_websocket.WebSocketConnection) -> None:
    """Answer control requests on one websocket until it closes."""
    commands = Commands(server)
    while True:
        try:
            request = json.loads(await ws.get_message())
        except trio_websocket.ConnectionClosed:
            return
        except ValueError:
            continue
        rid = request.get("rid") if isinstance(request, dict) else None
        try:
            reply = {"re": rid, "ok": True, "result": await _run(commands, request)}
        except ControlError as exc:
            reply = {"re": rid, "ok": False, "error": str(exc)}
        except _Exit as exit_:
            await ws.send_message(encode({"re": rid, "ok": True, "result": None}))
            await ws.aclose()
            os._exit(exit_.code)
        await ws.send_message(encode(reply))


async def _run(commands: Commands, request: Any) -> Any:
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
        raise ControlError("a request is {'rid': ..., 'cmd': name, 'args': {...}}")
    method = getattr(commands, "cmd_" + request["cmd"], None)
    if method is None:
        raise ControlError(f"unknown command {request['cmd']!r}")
    args = request.get("args") or {}
    try:
        inspect.signature(method).bind(**args)
    except TypeError as exc:
        raise ControlError(f"{request['cmd']}: {exc}") from None
    return await method(**args)
