"""A session's options: status posts, newsletters, calls, presence, history (``actors.sessions.SessionOptions``).

``PUT`` replaces them whole (missing fields take their defaults); the inbound path and the
session pick a change up within ``actors.tickets.POLICY_TTL`` seconds, without a restart.
"""

from __future__ import annotations

from typing import Annotated

import attrs
from pydantic import Field
from quart import Blueprint

from actors.sessions import SessionOptions
from actors.sessions._options import MAX_CALL_REPLY, MAX_HISTORY_CHATS, MAX_HISTORY_DAYS, MAX_TYPING_SECONDS

from ._audit import audited
from ._auth import Principal
from ._routing import Auth, endpoint, state
from ._sessions import session_or_404
from ._validate import Body

bp = Blueprint("session_options", __name__)


class OptionsBody(Body):
    status_broadcasts: Annotated[bool, Field(description="a contact's status post joins their ticket")] = False
    newsletters: Annotated[bool, Field(description="a channel (@newsletter) post opens a ticket")] = False
    reject_calls: Annotated[bool, Field(description="decline incoming calls at once")] = False
    call_reply: Annotated[str, Field(max_length=MAX_CALL_REPLY,
                                     description="text sent to a declined caller ('' sends nothing)")] = ""
    available: Annotated[bool, Field(description="show the account online while connected")] = False
    typing_seconds: Annotated[float, Field(ge=0, le=MAX_TYPING_SECONDS,
                                           description="'typing...' shown before each text reply (0: never)")] = 0.0
    subscribe_presence: Annotated[bool, Field(description="publish contacts' presence (presence.updated)")] = False
    history_days: Annotated[int, Field(ge=0, le=MAX_HISTORY_DAYS,
                                       description="history sync: import the last N days (0: none)")] = 7
    history_chats: Annotated[int, Field(ge=0, le=MAX_HISTORY_CHATS, description="history sync: chats at most")] = 50
    history_groups: Annotated[bool, Field(description="history sync: import group chats too")] = False


@endpoint(bp, "GET", "/tenants/{tenant_id}/sessions/{session_id}/options",
          summary="The session's options (status posts, newsletters, calls)", auth=Auth.TENANT)
async def get_options(who: Principal, tenant_id: str, session_id: str):
    await session_or_404(tenant_id, session_id)
    return attrs.asdict(SessionOptions.from_json(await state().node.store.session_options(session_id)))


@endpoint(bp, "PUT", "/tenants/{tenant_id}/sessions/{session_id}/options",
          summary="Replace the session's options (missing fields: defaults)", auth=Auth.TENANT_ADMIN,
          body=OptionsBody)
async def put_options(who: Principal, tenant_id: str, session_id: str, body: OptionsBody):
    await session_or_404(tenant_id, session_id)
    options = SessionOptions(**body.model_dump())

    async def write() -> dict:
        await state().node.store.set_session_options(session_id, options.to_json())
        return attrs.asdict(options)

    return await audited(who, "set_session_options", f"/tenants/{tenant_id}/sessions/{session_id}", write())
