import actors.store


def test_public_face_is_pinned():
    assert sorted(actors.store.__all__) == [
        "ALL_EVENTS", "AlreadyStored", "AuditEntry", "CURRENT_VERSION", "Conflict", "Contact", "DeliveryStatus",
        "Edited", "Enqueued", "Fence", "FencedOut", "FoundTicket", "Inserted", "InvalidInput", "JobStatus", "LidMerge",
        "MediaJob", "Message", "MessageVersion", "NewMessage", "NotFound", "OutboxItem", "OutboxSentRecord",
        "PostgresBackend",
        "QUARANTINED", "Queue",
        "SchemaTooNew", "SessionRecord", "SqliteBackend", "Store", "StoreClosed", "StoreError",
        "StoreStatistics", "StoreUnavailable", "Tenant", "Ticket", "TicketOutcome", "TicketStatus",
        "User", "Webhook", "WebhookDelivery", "WriteFailed", "is_lid", "open_store",
        "storable", "storable_text", "webhook_wants",
    ]
    for name in actors.store.__all__:
        assert getattr(actors.store, name) is not None


def test_errors_share_one_root_and_resemble_stdlib():
    from actors.store import (
        Conflict, FencedOut, InvalidInput, NotFound, SchemaTooNew, StoreClosed, StoreError,
        StoreUnavailable, WriteFailed,
    )

    expected = {
        StoreUnavailable: ConnectionError, SchemaTooNew: RuntimeError, FencedOut: PermissionError,
        NotFound: LookupError, Conflict: ValueError, InvalidInput: ValueError, StoreClosed: RuntimeError,
        WriteFailed: RuntimeError,
    }
    for error, stdlib in expected.items():
        assert issubclass(error, StoreError) and issubclass(error, stdlib)
