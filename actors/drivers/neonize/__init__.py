"""The neonize driver: real WhatsApp through neonize clients hosted in supervised worker processes.

Public face of the package (implementation in the ``_private`` modules).
Importing it never imports neonize: only the worker processes do
(``python -m actors.drivers.neonize._worker``).

* ``WorkerPool`` (+ ``PoolSettings``, ``PoolStats``) - starts, places sessions
  on, recycles and supervises the worker processes; run it in a nursery.
* ``NeonizeDriver`` - the :class:`~actors.drivers.Driver` of one session, on the pool;
  ``DeviceBook`` - the protocol of where it keeps its device's full JID between runs.
* Errors: ``NeonizeDriverError`` (root, a ``DriverError``), ``WorkerDied``
  (``restart_immediately``: restart the session at once, no WhatsApp backoff),
  ``WorkerStartError``, ``WorkerProtocolError``, ``PoolClosedError``.
* ``delete_device`` (+ ``DeviceStoreError``) - removes a device from whatsmeow's store without a
  connection (blocking: call it on a thread); the data lifecycle's purge uses it.
"""

from ._devicestore import DeviceStoreError, delete_device
from ._driver import DeviceBook, NeonizeDriver
from ._errors import NeonizeDriverError, PoolClosedError, WorkerDied, WorkerProtocolError, WorkerStartError
from ._pool import PoolSettings, PoolStats, WorkerPool

__all__ = [
    "DeviceBook",
    "DeviceStoreError",
    "NeonizeDriver",
    "NeonizeDriverError",
    "PoolClosedError",
    "PoolSettings",
    "PoolStats",
    "WorkerDied",
    "WorkerPool",
    "WorkerProtocolError",
    "WorkerStartError",
    "delete_device",
]
