"""Operations on sent messages as WhatsApp protobufs: reactions, edits, deletes for everyone,
and a text replying to (quoting) a message. Worker-side only.

Pure builders (no Go call), so a test checks the exact message. They follow whatsmeow's own
``BuildReaction`` / ``BuildEdit`` / ``BuildRevoke`` (``send.go``), which neonize 0.5.2 wraps:
the message key names the chat, the target's id and whether we wrote it (``fromMe``); a key of
another author's message in a group would also name the participant, which zapvisor does not
store (group messages are kept per group): reactions in groups are refused by the API.
"""

from __future__ import annotations

import time

from neonize.builder import build_edit, build_revoke
from neonize.proto.Neonize_pb2 import JID as JIDProto
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, ReactionMessage
from neonize.utils.jid import Jid2String, JIDToNonAD

from .._events import OutboundOperation, Quote
from .._kinds import MessageKind


def operation_message(operation: OutboundOperation, chat: JIDProto, me: JIDProto, *, now_ms: int | None = None) -> E2EMessage:
    """The WhatsApp message carrying ``operation`` on a message of ``chat`` (``me``: our own JID)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    match operation.kind:
        case MessageKind.REACTION:
            key = MessageKey(remoteJID=Jid2String(chat), fromMe=operation.target_from_me, ID=operation.target_id)
            return E2EMessage(reactionMessage=ReactionMessage(key=key, text=operation.text, senderTimestampMS=now_ms))
        case MessageKind.EDIT:
            edited = build_edit(chat, operation.target_id, E2EMessage(conversation=operation.text))
            edited.editedMessage.message.protocolMessage.timestampMS = now_ms
            return edited
        case MessageKind.REVOKE:
            return build_revoke(chat, me, operation.target_id, me)
    raise ValueError(f"not an operation: {operation.kind}")


def reply_message(text: str, quote: Quote, chat: JIDProto, me: JIDProto) -> E2EMessage:
    """``text`` replying to ``quote`` in a one-to-one ``chat``: an extended text whose context
    names the quoted message (id, author, its text), as whatsmeow's clients build replies."""
    author = me if quote.from_me else chat
    context = ContextInfo(stanzaID=quote.wa_id, participant=Jid2String(JIDToNonAD(author)),
                          quotedMessage=E2EMessage(conversation=quote.text))
    return E2EMessage(extendedTextMessage=ExtendedTextMessage(text=text, contextInfo=context))
