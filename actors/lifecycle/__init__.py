"""The data lifecycle (issue 17): retention, the janitor that enforces it, and purges.

* ``Sweeper`` - one janitor run (:meth:`~Sweeper.run_once`: every live tenant's data past its
  retention, in bounded batches, then the purges whose grace is over) and the immediate purges
  of a deleted session or tenant (:meth:`~Sweeper.purge_session`, :meth:`~Sweeper.purge_tenant`);
  counters in ``statistics()`` (:class:`LifecycleStatistics`), each run a :class:`RunReport`.
* ``Janitor`` - the actor (``/services/janitor``) that runs the sweeper every
  ``retention.interval`` under a cluster-wide bus lease (one node at a time); ``RunNow`` asks for
  a run at once, answered by a RunReport or ``Skipped``.
* ``PURGE`` - the counters' kind of what purges deleted (the others are the retention kinds).

Settings: the ``[retention]`` section; per-tenant overrides live in the store
(:class:`actors.store.Retention`).
"""

from ._janitor import LEASE_RESOURCE, Janitor, RunNow, Skipped
from ._sweeper import PURGE, LifecycleStatistics, RunReport, Sweeper

__all__ = [
    "LEASE_RESOURCE",
    "PURGE",
    "Janitor",
    "LifecycleStatistics",
    "RunNow",
    "RunReport",
    "Skipped",
    "Sweeper",
]
