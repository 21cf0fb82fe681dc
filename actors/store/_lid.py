"""LID aliases in contact JIDs: the resolution every contact upsert applies (rules: ``_ops_identity``)."""

from __future__ import annotations

from typing import Any

LID_SERVER = "@lid"


def is_lid(jid: str) -> bool:
    """Whether ``jid`` is a LID alias (``user@lid``)."""
    return jid.endswith(LID_SERVER)


async def resolve_jid(tx: Any, tenant_id: str, jid: str, now: float) -> str:
    """The JID a contact written as ``jid`` is stored under: the phone JID of a mapped LID, else ``jid``.

    For a LID, locks its ``lid_map`` row (creating it unmapped): see ``_ops_identity``.
    """
    if not is_lid(jid):
        return jid
    pn = await tx.fetchval(
        "INSERT INTO lid_map (tenant_id, lid, pn, updated_at) VALUES ($1, $2, NULL, $3) "
        "ON CONFLICT (tenant_id, lid) DO UPDATE SET lid = excluded.lid RETURNING pn",
        tenant_id, jid, now,
    )
    return pn or jid
