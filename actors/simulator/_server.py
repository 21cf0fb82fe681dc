"""The simulated WhatsApp server: accounts, handshakes, delivery, sends, faults.

One trio process serves every session over plain TCP + websocket (paths
``/wa`` for sessions, ``/control`` for the control API). The wire protocol is
described in the package docstring. Each session connection costs a handful of
trio tasks and one bounded frame channel, so thousands fit in one process.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections import deque
from typing import Any

import attrs
import trio
import trio_websocket

from ._config import SimulatorConfig
from ._model import MAX_OFFLINE_EVENTS, Faults, Stats, wall_clock
from ._control import serve_control
from ._link import Link
from ._media import MediaStore, sha256_hex
from ._state import Account, State, new_credentials
from ._kinds import OPERATIONS
from ._traffic import TrafficSpec, build_message, new_message_id, run_traffic

log = logging.getLogger(__name__)

PLAYABLE = frozenset({"audio", "video"})
"""Media kinds whose recipient's client also sends a ``played`` receipt (voice notes, videos)."""

_DISCONNECTS = (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, trio.TooSlowError,
                trio.BrokenResourceError, trio.ClosedResourceError)


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` (or every leaf of an exception group) just means "the client went away"."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_disconnect(inner) for inner in exc.exceptions)
    return isinstance(exc, _DISCONNECTS)


class BadFrame(ValueError):
    """A client frame is malformed; answered with an error, the connection stays up."""


def _field(frame: dict[str, Any], name: str, kind: type) -> Any:
    value = frame.get(name)
    if not isinstance(value, kind) or (kind is str and not value):
        raise BadFrame(f"field {name!r} must be a {'non-empty ' if kind is str else ''}{kind.__name__}")
    return value


@attrs.define(eq=False)
class SimulatorServer:
    """Serves sessions and the control API; see :func:`actors.simulator.serve`."""

    config: SimulatorConfig
    state: State
    media: MediaStore
    stats: Stats = attrs.field(factory=Stats)
    faults: Faults = attrs.field(factory=Faults)
    links: dict[str, Link] = attrs.field(factory=dict)
    port: int = 0
    nursery: trio.Nursery | None = None
    _seen: set[str] = attrs.field(factory=set)  # ids delivered at least once by this process
    _sent_log: dict[str, deque[dict[str, Any]]] = attrs.field(factory=dict)
    rejected_calls: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)  # see _identity
    presence_log: dict[str, deque[dict[str, Any]]] = attrs.field(factory=dict)  # the account's own presence ops
    traffic_scope: trio.CancelScope | None = None
    traffic_run_generated: int = 0  # messages of the current / last generator run

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    # -- queueing ----------------------------------------------------------------

    def enqueue(self, session: str, message: dict[str, Any]) -> None:
        """Queue an inbound message for ``session`` (delivered now if connected, else later)."""
        account = self.state.account(session)
        already_queued = message["id"] in account.queue
        account.queue[message["id"]] = message
        self.state.changed()
        if already_queued:
            return  # same id again (like WhatsApp): one message, the latest content
        self.stats.messages_enqueued += 1
        link = self.links.get(session)
        if link is not None:
            link.enqueue(message["id"])

    async def push_event(self, session: str, frame: dict[str, Any]) -> None:
        """Send a no-ack frame (receipt, presence...) now, or keep it for the next connection."""
        link = self.links.get(session)
        if link is not None and link.phase == "connected" and await link.send(frame):
            return
        account = self.state.account(session)
        account.events.append(frame)
        del account.events[:-MAX_OFFLINE_EVENTS]
        self.state.changed()

    def _on_delivered(self, message_id: str) -> None:
        self.stats.messages_delivered += 1
        if message_id in self._seen:
            self.stats.messages_redelivered += 1
        self._seen.add(message_id)

    # -- connections -------------------------------------------------------------

    async def handle_tcp(self, stream: trio.SocketStream) -> None:
        """Entry point of every TCP connection: route by websocket path."""
        self.stats.tcp_accepts += 1
        try:
            await self._route(stream)
        except Exception as exc:  # a connection handler is a failure boundary: log, keep serving
            if not _is_disconnect(exc):
                log.exception("simulator connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _route(self, stream: trio.SocketStream) -> None:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(self.config.hello_timeout):
                request = await trio_websocket.wrap_server_stream(nursery, stream)
            if request.path == "/control":
                await serve_control(self, await request.accept())
            elif request.path == "/wa":
                await self._serve_session(await request.accept())
            else:
                await request.reject(404, body=f"unknown path {request.path}".encode())
            nursery.cancel_scope.cancel()

    async def _serve_session(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.stats.connecting += 1
        self.stats.peak_concurrent_connects = max(self.stats.peak_concurrent_connects, self.stats.connecting)
        link: Link | None = None
        try:
            with trio.fail_after(self.config.hello_timeout):
                raw = await ws.get_message()
            try:
                hello = json.loads(raw)
            except ValueError:
                hello = None
            session = hello.get("session") if isinstance(hello, dict) and hello.get("op") == "hello" else None
            if not isinstance(session, str) or not session:
                await ws.aclose(4400, "expected a hello frame")
                return
            self.stats.connect_attempts += 1
            await trio.sleep(self.config.handshake_delay + self.faults.slow.get(session, self.faults.slow_all))
            account = self.state.account(session)
            link = Link(account=account, ws=ws, window=self.config.delivery_window)
            async with trio.open_nursery() as nursery:
                link.nursery = nursery
                nursery.start_soon(link.write_loop)
                refusal = self._refusal(account, hello.get("creds"))
                if refusal is not None:
                    self.stats.refused += 1
                    link.end(*refusal[:2], **refusal[2])
                    nursery.cancel_scope.cancel()
                else:
                    await self._run_link(link, hello, nursery)
            await link.goodbye()
        finally:
            if link is None or link.handshaking:
                self.stats.connecting -= 1

    async def _run_link(self, link: Link, hello: dict[str, Any], nursery: trio.Nursery) -> None:
        account = link.account
        session = account.session_id
        previous = self.links.get(session)
        if previous is not None:
            self.stats.replaced += 1
            previous.end(440, "replaced by a new connection")
        self.links[session] = link
        try:
            with link.cancel_scope:
                paired = account.paired and hello.get("creds") == account.creds
                await link.send({"ev": "welcome", "paired": paired, "delivery": self.config.delivery})
                self.stats.connecting -= 1
                link.handshaking = False
                link.set_stalled(self.faults.is_stalled(session))
                if paired:
                    await self._go_connected(link, nursery)
                elif self.config.auto_pair:
                    await self.pair(link, nursery)
                else:
                    nursery.start_soon(self._qr_loop, link, nursery)
                await self._read_loop(link, nursery)
        finally:
            link.ended = True
            if self.links.get(session) is link:
                del self.links[session]
            if link.phase == "connected":
                self.stats.connected -= 1
            nursery.cancel_scope.cancel()

    def _refusal(self, account: Account, creds: object) -> tuple[int, str, dict[str, Any]] | None:
        session = account.session_id
        if self.faults.outdated_all or session in self.faults.outdated:
            return 405, "client version outdated", {}
        if account.banned_until is not None:
            if account.banned_until > wall_clock():
                return 402, "temporarily banned", {"expires_at": account.banned_until, "ban_code": account.ban_code}
            account.banned_until = account.ban_code = None
            self.state.changed()
        if creds is not None and creds != account.creds:
            return 401, "credentials not recognised (logged out)", {}
        refuse_code = self.faults.refuse_qr.get(session, self.faults.refuse_qr_all)
        if creds is None and refuse_code is not None and not self.config.auto_pair:
            return refuse_code, "QR pairing refused", {}
        return None

    async def _go_connected(self, link: Link, nursery: trio.Nursery) -> None:
        account = link.account
        if not await link.send({"ev": "connected", "jid": account.jid}) or link.ended:
            return  # the link ended meanwhile; from here on nothing yields, so it stays open
        self.stats.connects += 1
        self.stats.connected += 1
        self.stats.peak_connected = max(self.stats.peak_connected, self.stats.connected)
        self.stats.last_connected_at = wall_clock()
        offline_events, account.events = account.events, []
        if offline_events:
            self.state.changed()
        link.start_delivery()
        nursery.start_soon(link.deliver_loop, offline_events, self._on_delivered)

    async def pair(self, link: Link, nursery: trio.Nursery | None = None) -> None:
        """Complete pairing of a link showing QR / pairing codes: issue credentials, connect."""
        if link.phase == "connected" or link.ended:
            return
        account = link.account
        account.creds = new_credentials()
        self.state.changed()
        await self.state.flush()
        if link.ended:
            return  # the credentials stay valid; the driver never got them and will pair again
        link.paired.set()
        await link.send({"ev": "pair_success", "jid": account.jid, "creds": account.creds})
        await self._go_connected(link, nursery or link.nursery)

    async def _qr_loop(self, link: Link, nursery: trio.Nursery) -> None:
        for index in range(1, self.config.qr_count + 1):
            if link.phase == "pairing":
                break
            code = f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(8)}"
            await link.send({"ev": "qr", "code": code, "index": index,
                             "expires_at": wall_clock() + self.config.qr_interval})
            with trio.move_on_after(self.config.qr_interval):
                await link.paired.wait()
                return
        if link.phase == "pairing":
            with trio.move_on_at(link.pairing_deadline):
                await link.paired.wait()
                return
            link.end(408, "pairing code expired")
            return
        link.end(408, "QR code timed out")

    async def _read_loop(self, link: Link, nursery: trio.Nursery) -> None:
        while True:
            try:
                frame = json.loads(await link.ws.get_message())
            except trio_websocket.ConnectionClosed:
                return
            except ValueError:
                continue  # not JSON: nothing to answer
            if not isinstance(frame, dict):
                continue
            rid = frame.get("rid")
            try:
                await self._dispatch(link, frame, rid)
            except BadFrame as exc:
                if rid is not None:
                    await link.send({"re": rid, "ok": False, "code": 400, "error": str(exc)})

    async def _dispatch(self, link: Link, frame: dict[str, Any], rid: object) -> None:
        account = link.account
        op = frame.get("op")
        if op == "ping":
            await link.send({"re": rid, "ok": True})
            return
        if op == "pair_phone":
            await self._pair_phone(link, frame, rid)
            return
        if op == "logout":  # valid in any phase: an unpaired device can give up too
            account.creds = None
            self.state.changed()
            await self.state.flush()
            await link.send({"re": rid, "ok": True})
            link.end(401, "logged out by this device", local=True)
            return
        if link.phase != "connected":
            raise BadFrame(f"op {op!r} needs a logged-in connection")
        match op:
            case "ack" | "received":
                message_ids = _field(frame, "ids", list)
                if not all(isinstance(message_id, str) for message_id in message_ids):
                    raise BadFrame("field 'ids' must be a list of message ids")
                if (op == "received") != (self.config.delivery == "whatsmeow"):
                    return  # the other mode's signal: whatsmeow ignores acks, the idealised mode receipts
                for message_id in message_ids:
                    if account.queue.pop(message_id, None) is not None:
                        if op == "ack":
                            self.stats.messages_acked += 1
                        else:
                            self.stats.messages_receipted += 1
                        self._seen.discard(message_id)
                self.state.changed()
                link.acked(message_ids)
            case "send":
                await self._on_send(link, frame, rid)
            case "mark_read":
                _field(frame, "chat", str)
                self.stats.marks_read += len(_field(frame, "ids", list))
                await link.send({"re": rid, "ok": True})
            case "download":
                link.nursery.start_soon(self._on_download, link, _field(frame, "ref", str), rid)
            case "presence" | "chat_state" | "subscribe_presence":
                entry = {key: frame[key] for key in ("op", "state", "chat", "jid") if key in frame}
                self.presence_log.setdefault(account.session_id, deque(maxlen=self.config.sent_log)).append(
                    {**entry, "ts": wall_clock()})
                await link.send({"re": rid, "ok": True})
            case "reject_call":
                rejected = {"call_id": _field(frame, "call_id", str), "call_from": _field(frame, "call_from", str)}
                self.rejected_calls.setdefault(account.session_id, []).append(rejected)
                await link.send({"re": rid, "ok": True})
            case _:
                raise BadFrame(f"unknown op {op!r}")

    async def _pair_phone(self, link: Link, frame: dict[str, Any], rid: object) -> None:
        number = _field(frame, "number", str)
        if not number.isdigit() or not 8 <= len(number) <= 15:
            raise BadFrame("field 'number' must be 8 to 15 digits, country code first")
        if link.phase != "qr":
            raise BadFrame("pair_phone is only valid while QR codes are shown")
        alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ123456789"
        raw = "".join(secrets.choice(alphabet) for _ in range(8))
        link.pairing_code = f"{raw[:4]}-{raw[4:]}"
        link.phase = "pairing"
        link.pairing_deadline = trio.current_time() + self.config.pairing_code_ttl
        expires_at = wall_clock() + self.config.pairing_code_ttl
        await link.send({"re": rid, "ok": True, "code": link.pairing_code, "expires_at": expires_at})
        await link.send({"ev": "pairing_code", "code": link.pairing_code, "expires_at": expires_at})

    async def _on_send(self, link: Link, frame: dict[str, Any], rid: object) -> None:
        """Accept a send as WhatsApp does: the server names the message (an id the client never
        chose, so a client that repeats a send after losing the answer makes a second message),
        answers with that id, and the receipts that follow carry it.

        A ``lose_answers`` fault accepts the send, then cuts the connection before answering: the
        client cannot tell whether WhatsApp has the message (it does).
        """
        account = link.account
        to = _field(frame, "to", str)
        media = frame.get("media")
        if media is not None and not isinstance(media, dict):
            raise BadFrame("field 'media' must be an object or null")
        kind = frame.get("kind") or "text"
        if kind != "text" and (kind not in OPERATIONS or not isinstance(frame.get("target_id"), str)):
            raise BadFrame(f"field 'kind' must be text or one of {OPERATIONS} with a 'target_id', got {kind!r}")
        self.stats.sends_received += 1
        message_id = new_message_id()
        timestamp = wall_clock()
        log_entry = {"id": message_id, "to": to, "text": frame.get("text", ""), "ts": timestamp,
                     "media": None if media is None else {k: v for k, v in media.items() if k != "data"},
                     "kind": kind, "target_id": frame.get("target_id"), "quoted_id": frame.get("quoted_id")}
        self._sent_log.setdefault(account.session_id, deque(maxlen=self.config.sent_log)).append(log_entry)
        if kind in OPERATIONS:  # a reaction, edit or delete: acknowledged, no receipts
            await link.send({"re": rid, "ok": True, "id": message_id, "ts": timestamp})
            return
        peer = self.state.session_of(to)
        if peer is not None and peer != account.session_id:
            await self._deliver_to_peer(account, peer, message_id, str(frame.get("text") or ""), media, timestamp)
        played = media is not None and media.get("kind") in PLAYABLE
        self.nursery.start_soon(self._receipts, account.session_id, message_id, to, played)
        if self.faults.take_lost_answer(account.session_id):
            self.stats.answers_lost += 1
            link.end(None, "dropped after accepting a send")
            return
        await link.send({"re": rid, "ok": True, "id": message_id, "ts": timestamp})

    async def _deliver_to_peer(self, sender: Account, peer: str, message_id: str, text: str,
                               media: dict[str, Any] | None, timestamp: float) -> None:
        """A send to another simulated account's JID arrives in that account's queue (demo chats)."""
        wire_media = None
        if media is not None:
            try:
                data = base64.b64decode(media.get("data", ""), validate=True)
            except (binascii.Error, TypeError) as exc:
                raise BadFrame("field 'media.data' must be base64") from exc
            wire_media = {"ref": await self.media.put(data), "kind": media.get("kind", "document"),
                          "mimetype": media.get("mimetype", "application/octet-stream"), "size": len(data),
                          "file_name": media.get("file_name"), "sha256": sha256_hex(data)}
        self.enqueue(peer, build_message(sender=sender.jid, timestamp=timestamp, text=text, media=wire_media,
                                         message_id=message_id, push_name=sender.session_id))

    async def _receipts(self, session: str, message_id: str, chat: str, played: bool) -> None:
        """Delivered, then read (then played, for audio and video) receipts, carrying the id this
        server gave the message."""
        await trio.sleep(self.config.receipt_delay)
        steps = [("delivered", 0.0), ("read", self.config.read_delay)]
        if played:
            steps.append(("played", self.config.read_delay))
        for kind, delay in steps:
            await trio.sleep(delay)
            await self.push_event(session, {"ev": "receipt", "ids": [message_id], "chat": chat,
                                            "kind": kind, "ts": wall_clock()})
            self.stats.receipts_sent += 1

    async def _on_download(self, link: Link, ref: str, rid: object) -> None:
        self.stats.downloads += 1
        try:
            data = await self.media.get(ref)
        except KeyError:
            await link.send({"re": rid, "ok": False, "code": 404, "error": f"unknown media ref {ref!r}"})
            return
        await link.send({"re": rid, "ok": True, "data": base64.b64encode(data).decode()})

    def sent_log(self, session: str) -> list[dict[str, Any]]:
        """Outbound messages this process accepted from ``session`` (latest ``sent_log``)."""
        return list(self._sent_log.get(session, ()))

    # -- faults ------------------------------------------------------------------

    def targets(self, session: str | None) -> list[Link]:
        """The live links a fault applies to (one session, or all with ``None``)."""
        if session is None:
            return list(self.links.values())
        link = self.links.get(session)
        return [] if link is None else [link]

    def end_links(self, session: str | None, code: int | None, reason: str, **extra: Any) -> int:
        """End the targeted links (see :meth:`Link.end`); returns how many."""
        links = self.targets(session)
        for link in links:
            link.end(code, reason, **extra)
        return len(links)

    async def run_traffic(self, spec: TrafficSpec, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the traffic generator until it is done or stopped (one at a time)."""

        def candidates() -> list[str]:
            return sorted(sid for sid, account in self.state.accounts.items() if account.paired)

        def enqueue(session: str, message: dict[str, Any]) -> None:
            self.stats.traffic_generated += 1
            self.traffic_run_generated += 1
            self.enqueue(session, message)

        self.stop_traffic()
        self.traffic_run_generated = 0
        with trio.CancelScope() as scope:
            self.traffic_scope = scope
            task_status.started()
            try:
                await run_traffic(spec, candidates, enqueue, wall_clock)
            finally:
                if self.traffic_scope is scope:
                    self.traffic_scope = None

    def stop_traffic(self) -> bool:
        """Stop the running generator; returns whether one was running."""
        if self.traffic_scope is None:
            return False
        self.traffic_scope.cancel()
        self.traffic_scope = None
        return True
