"""Control commands for customer identity, calls and presence: LID senders, revealed mappings,
call offers, and what the account itself announced.

Real WhatsApp (through whatsmeow) may name a customer by a LID (``user@lid``), with the phone
number in an alternate field (``SenderAlt``) or not at all; the mapping may become known later.
These commands let a test play each case:

* ``send_as_lid`` ``{session, lid, text, pn?, push_name?, message_id?}``: a one-to-one message
  whose sender and chat are ``lid``; ``pn`` fills the alternate field (omitted: the phone number
  is hidden, as for a customer whose number WhatsApp does not share).
* ``reveal_lid`` ``{session, lid, pn}``: the ``lid_mapping`` event (neonize's LID store answering).
* ``call`` ``{session, caller, caller_alt?, video?}``: a ``call_offer`` event; returns its id.
  Rejections the account sends (``{"op": "reject_call", "call_id", "call_from"}``) are listed
  by ``rejected_calls`` ``{session}``.
* ``history`` ``{session, chats: [{jid, name?, messages: [{ts, text, from_me?, sender?, id?}]}],
  progress?, sync_type?}``: a ``history`` event (WhatsApp's history sync after pairing); returns
  the messages' ids per chat.
* ``presence_sent`` ``{session}``: the account's own presence ops, in order (``presence``
  available/unavailable, ``chat_state`` composing/paused in a chat, ``subscribe_presence`` to a
  contact), each with the server's wall-clock ``ts``. (A contact's presence *to* the account is
  the ``presence`` command.)
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from ._errors import ControlError
from ._model import wall_clock
from ._traffic import build_message

if TYPE_CHECKING:
    from ._server import SimulatorServer


def _jid(value: Any, field: str, server: str) -> str:
    if not isinstance(value, str) or not value.endswith(server) or len(value) <= len(server):
        raise ControlError(f"{field} must be a 'user{server}' JID, got {value!r}")
    return value


class IdentityCommands:
    """Mixed into the simulator's ``Commands`` (which provides ``server`` and ``_account``)."""

    server: SimulatorServer

    async def cmd_send_as_lid(self, session: str, lid: str, text: str = "", pn: str | None = None,
                              push_name: str | None = None, message_id: str | None = None) -> dict[str, Any]:
        self._account(session)  # type: ignore[attr-defined]
        message = build_message(sender=_jid(lid, "lid", "@lid"), timestamp=wall_clock(), text=text,
                                message_id=message_id, push_name=push_name)
        if pn is not None:
            message["sender_alt"] = _jid(pn, "pn", "@s.whatsapp.net")
        self.server.enqueue(session, message)
        await self.server.state.flush()
        return {"id": message["id"]}

    async def cmd_reveal_lid(self, session: str, lid: str, pn: str) -> None:
        self._account(session)  # type: ignore[attr-defined]
        await self.server.push_event(session, {"ev": "lid_mapping", "lid": _jid(lid, "lid", "@lid"),
                                               "pn": _jid(pn, "pn", "@s.whatsapp.net")})

    async def cmd_call(self, session: str, caller: str, caller_alt: str | None = None,
                       video: bool = False) -> dict[str, Any]:
        self._account(session)  # type: ignore[attr-defined]
        call_id = secrets.token_hex(16).upper()
        await self.server.push_event(session, {"ev": "call_offer", "call_id": call_id, "from": caller,
                                               "from_alt": caller_alt, "ts": wall_clock(), "video": bool(video)})
        return {"call_id": call_id}

    async def cmd_rejected_calls(self, session: str) -> list[dict[str, Any]]:
        return list(self.server.rejected_calls.get(session, ()))

    async def cmd_history(self, session: str, chats: list[dict[str, Any]], progress: int | None = None,
                          sync_type: str = "INITIAL_BOOTSTRAP") -> dict[str, Any]:
        """Push a history sync chunk; returns the ids given to its messages, per chat."""
        self._account(session)  # type: ignore[attr-defined]
        wire, ids = [], {}
        for chat in chats:
            try:
                jid, messages = chat["jid"], chat["messages"]
                built = [build_message(sender=m.get("sender") or jid, chat=jid, timestamp=float(m["ts"]),
                                       text=m.get("text", ""), message_id=m.get("id"),
                                       from_me=bool(m.get("from_me"))) for m in messages]
            except (KeyError, TypeError, ValueError) as exc:
                raise ControlError(f"chats: each needs 'jid' and 'messages' [{{'ts', 'text'}}] ({exc!r})") from exc
            wire.append({"jid": jid, "name": chat.get("name", ""), "is_group": jid.endswith("@g.us"), "msgs": built})
            ids[jid] = [m["id"] for m in built]
        await self.server.push_event(session, {"ev": "history", "chats": wire, "progress": progress,
                                               "sync_type": sync_type})
        return ids

    async def cmd_presence_sent(self, session: str) -> list[dict[str, Any]]:
        return list(self.server.presence_log.get(session, ()))
