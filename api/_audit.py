"""The audit trail of admin actions: who did what to which target, and how it ended (issue 6 §1).

Every state-changing admin request (supervision control, breakers, queues, sessions) is
appended to the store's audit table, refusals included.
"""

from __future__ import annotations

from typing import Any, Awaitable

from ._auth import Principal
from ._errors import ApiError
from ._routing import state


async def record(who: Principal, action: str, target: str, result: str, detail: str | None = None) -> None:
    await state().node.store.append_audit(who.name, action, target, result, detail)


async def audited(who: Principal, action: str, target: str, call: Awaitable[Any]) -> Any:
    """Await ``call`` and record the outcome: ``ok`` (with the result as detail) or ``refused: <code>``."""
    try:
        result = await call
    except ApiError as error:
        await record(who, action, target, f"refused: {error.code}", error.message)
        raise
    await record(who, action, target, "ok", None if result is None else str(result)[:500])
    return result
