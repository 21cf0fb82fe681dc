"""Session credentials in the store, where every node of a cluster reaches them.

The simulated driver's :class:`~actors.drivers.SimulatedDriverConfig` takes a ``keeper``; with
PostgreSQL the node gives it this one, so the node that takes a session over (failover,
drain, rebalance) logs in with the credentials its pairing left, without a new QR code.
(neonize keeps its device store in PostgreSQL by itself.)
"""

from __future__ import annotations

import attrs

from actors.store import Store


@attrs.frozen
class StoredCredentials:
    """A credential keeper over the store's ``driver_credentials`` table, for one ``driver``.

    Raises what the store raises (StoreUnavailable, StoreClosed): the session's connect fails
    and its supervisor retries, as for any connect failure.
    """

    store: Store
    driver: str = "simulated"

    async def load(self, session_id: str) -> str | None:
        return await self.store.get_credentials(session_id, self.driver)

    async def save(self, session_id: str, creds: str) -> None:
        await self.store.set_credentials(session_id, self.driver, creds)

    async def forget(self, session_id: str) -> None:
        await self.store.delete_credentials(session_id, self.driver)
