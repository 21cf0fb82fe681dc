"""What the message flows share: the hub publish hook and queue administration messages.

* :class:`Publisher` (the hub's ``emit`` hook), :data:`no_publisher`, the event names and
  payload builders.
* Queue administration messages (:class:`ListJobs`, :class:`GetJob`, :class:`RetryJob`,
  :class:`RemoveJob`, :class:`CleanJobs`, :class:`PauseQueue`, :class:`ResumeQueue`,
  :class:`QueueStatus`) answered by the outbox, media and webhook services through
  :func:`answer_admin`.
* :class:`Flows` / :func:`build_flows`: a node's ticket directory, inbound sink, outbox and
  media services, as ``/services`` children.
"""

from ._admin import (
    CleanJobs,
    GetJob,
    ListJobs,
    PauseQueue,
    QueueAdmin,
    QueueInfo,
    QueueRefused,
    QueueStatus,
    RemoveJob,
    ResumeQueue,
    RetryJob,
    answer_admin,
)
from ._errors import FlowError
from ._wakeup import Wakeup
from ._publish import (
    DELETED_TEXT,
    MESSAGE_CREATED,
    MESSAGE_SEND_UNKNOWN,
    MESSAGE_UPDATED,
    OUTBOX_PAUSED,
    OUTBOX_RESUMED,
    OUTBOX_UPDATED,
    TICKET_CREATED,
    TICKET_UPDATED,
    NoPublisher,
    Publisher,
    as_seen,
    message_payload,
    no_publisher,
    outbox_payload,
    ticket_payload,
)

# Last: the wiring imports the tickets, outbox and media packages, which import the names above.
from ._wiring import Flows, build_flows  # noqa: E402

__all__ = [
    "DELETED_TEXT",
    "MESSAGE_CREATED",
    "MESSAGE_SEND_UNKNOWN",
    "MESSAGE_UPDATED",
    "OUTBOX_PAUSED",
    "OUTBOX_RESUMED",
    "OUTBOX_UPDATED",
    "TICKET_CREATED",
    "TICKET_UPDATED",
    "CleanJobs",
    "FlowError",
    "Flows",
    "GetJob",
    "NoPublisher",
    "ListJobs",
    "PauseQueue",
    "Publisher",
    "QueueAdmin",
    "QueueInfo",
    "QueueRefused",
    "QueueStatus",
    "RemoveJob",
    "ResumeQueue",
    "RetryJob",
    "Wakeup",
    "answer_admin",
    "build_flows",
    "as_seen",
    "message_payload",
    "no_publisher",
    "outbox_payload",
    "ticket_payload",
]
