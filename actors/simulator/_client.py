"""``SimulatorControl``: the Python client of the control API (tests, benchmarks, demo)."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio_websocket

from ._errors import ControlConnectionError, ControlError


@attrs.frozen
class SimulatorStats:
    """A snapshot of the simulator's counters (since its process started) and gauges."""

    tcp_accepts: int
    connect_attempts: int
    connecting: int
    peak_concurrent_connects: int
    connects: int
    connected: int
    peak_connected: int
    refused: int
    replaced: int
    messages_enqueued: int
    messages_delivered: int
    messages_redelivered: int
    messages_acked: int
    messages_receipted: int
    sends_received: int
    answers_lost: int
    receipts_sent: int
    marks_read: int
    downloads: int
    traffic_generated: int
    started_at: float
    last_connected_at: float | None
    accounts: int
    paired_accounts: int
    queued: int
    traffic_running: bool


@attrs.define(eq=False)
class SimulatorControl:
    """One control connection. Open with :meth:`open`; calls are serialized.

    Every method raises :class:`ControlError` when the simulator rejects the
    command and :class:`ControlConnectionError` when the simulator is
    unreachable or goes away mid-call. ``session=None`` in a fault means
    "every session".
    """

    url: str
    _ws: trio_websocket.WebSocketConnection
    timeout: float = 30.0
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _rids: itertools.count = attrs.field(factory=itertools.count)

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, timeout: float = 30.0) -> AsyncIterator[SimulatorControl]:
        """Connect to the simulator at ``url`` (``ws://host:port``)."""
        try:
            async with trio_websocket.open_websocket_url(
                url.rstrip("/") + "/control", connect_timeout=timeout, disconnect_timeout=2.0
            ) as ws:
                yield cls(url, ws, timeout)
        except (OSError, trio_websocket.HandshakeError) as exc:
            raise ControlConnectionError(f"cannot reach the simulator at {url}: {exc}") from exc

    async def call(self, cmd: str, **args: Any) -> Any:
        """Run one control command and return its result."""
        rid = next(self._rids)
        async with self._lock:
            try:
                with trio.fail_after(self.timeout):
                    await self._ws.send_message(json.dumps({"rid": rid, "cmd": cmd, "args": args}))
                    reply = json.loads(await self._ws.get_message())
            except trio_websocket.ConnectionClosed as exc:
                raise ControlConnectionError(f"simulator closed the control connection during {cmd!r}") from exc
            except trio.TooSlowError as exc:
                raise ControlConnectionError(f"simulator did not answer {cmd!r} within {self.timeout}s") from exc
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "unknown error"))
        return reply.get("result")

    # -- inspection ------------------------------------------------------------

    async def stats(self) -> SimulatorStats:
        return SimulatorStats(**await self.call("stats"))

    async def account(self, session: str) -> dict[str, Any]:
        """Account details: jid, paired, creds, banned_until, queued (+ ids), phase of its link."""
        return await self.call("account", session=session)

    async def sent(self, session: str) -> list[dict[str, Any]]:
        """Outbound messages the simulator accepted from ``session``, with the ids it gave them."""
        return await self.call("sent", session=session)

    async def flush(self) -> None:
        """Wait until the simulator's state file holds every change made so far."""
        await self.call("flush")

    # -- accounts and pairing --------------------------------------------------

    async def create_account(self, session: str, *, paired: bool = True) -> dict[str, Any]:
        """Provision an account; returns ``{"jid", "creds"}`` (creds ``None`` when unpaired)."""
        return await self.call("create_account", session=session, paired=paired)

    async def scan(self, session: str) -> str:
        """"Scan" the QR code the session shows; returns the account JID."""
        return (await self.call("scan", session=session))["jid"]

    async def confirm_pairing(self, session: str, code: str) -> str:
        """Type the pairing code on "the phone"; returns the account JID."""
        return (await self.call("confirm_pairing", session=session, code=code))["jid"]

    # -- contacts --------------------------------------------------------------

    async def send_message(self, session: str, text: str = "", *, sender: str | None = None,
                           chat: str | None = None, media: bytes | None = None, media_kind: str = "image",
                           mimetype: str = "image/jpeg", file_name: str | None = None,
                           message_id: str | None = None, push_name: str | None = None,
                           from_me: bool = False, quoted_id: str | None = None, kind: str = "text",
                           payload: dict[str, Any] | None = None, target_id: str | None = None) -> str:
        """A contact sends a message to ``session``'s account; returns its id once it is durable.

        ``kind`` and ``payload`` make it any kind of message (``actors.simulator._kinds.SAMPLES``
        has one of each); a reaction, edit or delete names the message it acts on in ``target_id``
        (see also :meth:`react`, :meth:`edit`, :meth:`revoke`)."""
        wire_media = None
        if media is not None:
            wire_media = {"data": base64.b64encode(media).decode(), "kind": media_kind, "mimetype": mimetype,
                          "file_name": file_name}
        result = await self.call("send_message", session=session, text=text, sender=sender, chat=chat,
                                 media=wire_media, message_id=message_id, push_name=push_name, from_me=from_me,
                                 quoted_id=quoted_id, kind=kind, payload=payload, target_id=target_id)
        return result["id"]

    async def react(self, session: str, target_id: str, emoji: str, *, sender: str | None = None,
                    chat: str | None = None) -> str:
        """``sender`` reacts to ``target_id`` with ``emoji`` (``""`` removes its reaction)."""
        return await self.send_message(session, sender=sender, chat=chat, kind="reaction", payload={"emoji": emoji},
                                       target_id=target_id)

    async def edit(self, session: str, target_id: str, text: str, *, sender: str | None = None,
                   from_me: bool = False) -> str:
        """``target_id``'s author changes its text to ``text``."""
        return await self.send_message(session, text, sender=sender, kind="edit", target_id=target_id,
                                       from_me=from_me)

    async def revoke(self, session: str, target_id: str, *, sender: str | None = None) -> str:
        """``target_id``'s author deletes it for everyone."""
        return await self.send_message(session, sender=sender, kind="revoke", target_id=target_id)

    async def presence(self, session: str, jid: str, state: str, *, chat: str | None = None,
                       last_seen: float | None = None) -> None:
        await self.call("presence", session=session, jid=jid, state=state, chat=chat, last_seen=last_seen)

    async def send_as_lid(self, session: str, lid: str, text: str = "", *, pn: str | None = None,
                          push_name: str | None = None) -> str:
        """A customer writes as ``lid`` (``pn`` in the alternate field, or hidden); returns the id."""
        return (await self.call("send_as_lid", session=session, lid=lid, text=text, pn=pn, push_name=push_name))["id"]

    async def reveal_lid(self, session: str, lid: str, pn: str) -> None:
        await self.call("reveal_lid", session=session, lid=lid, pn=pn)

    async def place_call(self, session: str, caller: str, *, caller_alt: str | None = None, video: bool = False) -> str:
        """``caller`` calls ``session``'s account; returns the call id."""
        return (await self.call("call", session=session, caller=caller, caller_alt=caller_alt, video=video))["call_id"]

    async def rejected_calls(self, session: str) -> list[dict]:
        return await self.call("rejected_calls", session=session)

    async def history(self, session: str, chats: list[dict], *, progress: int | None = None,
                      sync_type: str = "INITIAL_BOOTSTRAP") -> dict[str, list[str]]:
        """Send a history sync chunk (see ``_identity``); returns its message ids per chat."""
        return await self.call("history", session=session, chats=chats, progress=progress, sync_type=sync_type)

    async def presence_sent(self, session: str) -> list[dict]:
        """The account's own presence operations (available, typing, subscriptions), in order."""
        return await self.call("presence_sent", session=session)

    async def undecryptable(self, session: str, *, sender: str | None = None, unavailable: bool = False) -> str:
        return (await self.call("undecryptable", session=session, sender=sender, unavailable=unavailable))["id"]

    async def traffic_start(self, **spec: Any) -> None:
        """Start the seeded generator (fields of :class:`TrafficSpec`), replacing a running one."""
        await self.call("traffic_start", **spec)

    async def traffic_stop(self) -> int:
        """Stop the generator; returns how many messages its last run generated."""
        return (await self.call("traffic_stop"))["generated"]

    # -- faults ----------------------------------------------------------------

    async def drop(self, session: str | None = None) -> int:
        return (await self.call("drop", session=session))["closed"]

    async def disconnect(self, code: int, session: str | None = None, *, reason: str = "",
                         expires_at: float | None = None) -> int:
        return (await self.call("disconnect", code=code, session=session, reason=reason,
                                expires_at=expires_at))["closed"]

    async def stall(self, session: str | None = None, *, on: bool = True) -> int:
        return (await self.call("stall", session=session, on=on))["links"]

    async def lose_answers(self, session: str, count: int = 1) -> None:
        """Accept the next ``count`` sends of ``session``, then drop the link before answering."""
        await self.call("lose_answers", session=session, count=count)

    async def slow_connect(self, seconds: float, session: str | None = None) -> None:
        await self.call("slow_connect", seconds=seconds, session=session)

    async def ban(self, session: str, *, until: float | None = None, seconds: float | None = None,
                  ban_code: int | None = None) -> float:
        """Ban until ``until`` (epoch s) or for ``seconds``; returns the expiry."""
        return (await self.call("ban", session=session, until=until, seconds=seconds,
                                ban_code=ban_code))["expires_at"]

    async def unban(self, session: str) -> None:
        await self.call("unban", session=session)

    async def replace(self, session: str) -> int:
        return (await self.call("replace", session=session))["closed"]

    async def logout(self, session: str) -> int:
        return (await self.call("logout", session=session))["closed"]

    async def refuse_qr(self, session: str | None = None, *, on: bool = True, code: int = 408) -> None:
        await self.call("refuse_qr", session=session, on=on, code=code)

    async def outdated(self, session: str | None = None, *, on: bool = True) -> None:
        await self.call("outdated", session=session, on=on)

    async def reset_faults(self) -> None:
        await self.call("reset_faults")

    async def exit(self, code: int = 0, *, flush: bool = True) -> None:
        """Make the simulator process exit (after writing its state when ``flush``)."""
        await self.call("exit", code=code, flush=flush)
