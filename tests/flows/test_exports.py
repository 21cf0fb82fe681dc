"""Pins the public faces of the flows packages (flows, tickets, outbox, media)."""

import pytest

import actors.flows
import actors.media
import actors.outbox
import actors.tickets

EXPORTS = {
    actors.flows: {
        "DELETED_TEXT", "MESSAGE_CREATED", "MESSAGE_SEND_UNKNOWN", "MESSAGE_UPDATED", "OUTBOX_PAUSED", "OUTBOX_RESUMED", "OUTBOX_UPDATED",
        "TICKET_CREATED", "TICKET_UPDATED", "CleanJobs", "FlowError", "Flows", "GetJob",
        "ListJobs", "NoPublisher", "PauseQueue", "Publisher", "QueueAdmin", "QueueInfo", "QueueRefused",
        "QueueStatus", "RemoveJob", "ResumeQueue", "RetryJob", "Wakeup", "answer_admin", "build_flows",
        "as_seen", "message_payload", "no_publisher", "outbox_payload", "ticket_payload",
    },
    actors.tickets: {
        "Accept", "AppendInbound", "Appended", "Close", "GetTicket", "MarkTicketRead", "MovedTo", "Reopen",
        "TicketActor", "TicketDeps", "TicketDirectory", "TicketError", "TicketInbound", "TicketRefused",
        "TicketUnavailable", "Transfer", "is_status_or_broadcast", "media_source", "publish_change",
    },
    actors.outbox: {"WAKE_CHANNEL", "MediaFile", "OutboxDeps", "OutboxError", "OutboxRefused", "OutboxService", "Send",
                    "SessionDeleted"},
    actors.media: {
        "MediaDeps", "MediaDispatcher", "MediaError", "MediaJobActor", "PermanentMediaError", "detect_extension",
        "media_supervisor", "parse_source", "relative_path", "write_atomically",
    },
}


@pytest.mark.parametrize("module", list(EXPORTS), ids=lambda m: m.__name__)
def test_all_is_pinned_and_resolves(module) -> None:
    assert len(set(module.__all__)) == len(module.__all__)
    assert set(module.__all__) == EXPORTS[module]
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_errors_have_one_root_and_stdlib_bases() -> None:
    assert issubclass(actors.flows.FlowError, Exception)
    assert issubclass(actors.tickets.TicketUnavailable, (actors.tickets.TicketError, RuntimeError))
    assert issubclass(actors.media.PermanentMediaError, (actors.media.MediaError, ValueError))
