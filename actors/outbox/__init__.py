"""The outbound flow: a durable outbox delivered in order, paced, at most once — a send whose
outcome is unknown is marked ``unknown`` and announced, never sent again without an admin retry;
every sent row keeps the id WhatsApp gave it (see :mod:`actors.outbox._outbox`).

* :class:`OutboxService` (``/services/outbox``) with :class:`OutboxDeps`; messages :class:`Send`
  (reply: the store's Enqueued or :class:`OutboxRefused`), :class:`SessionDeleted` and the queue administration
  messages of :mod:`actors.flows`; :data:`WAKE_CHANNEL`, the bus channel that wakes the sender of
  a session whose row was written straight to the store (another node's send, a campaign's).
"""

from ._errors import OutboxError
from ._messages import MediaFile, OutboxRefused, Send, SessionDeleted
from ._outbox import WAKE_CHANNEL, OutboxDeps, OutboxService

__all__ = ["WAKE_CHANNEL", "MediaFile", "OutboxDeps", "OutboxError", "OutboxRefused", "OutboxService", "Send",
           "SessionDeleted"]
