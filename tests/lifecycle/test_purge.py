"""Purges on both backends: a deleted tenant (or session) purged by the janitor after its grace
leaves no row in any table of the schema, nor its files; what belongs to others stays."""

from __future__ import annotations

from typing import Any

from actors.store import Fence, NewRecipient, Queue, Retention

from tests.store.helpers import message

DOOMED = "doomed-tenant"
DOOMED_SESSIONS = ("doomed-s1", "doomed-s2")
KEEPER = "keeper"


async def _tables(store) -> dict[str, list[tuple]]:
    """Every table the schema made, with all its rows (values only)."""

    async def read(tx: Any) -> dict[str, list[tuple]]:
        if tx.dialect == "sqlite":
            names = [r["name"] for r in await tx.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")]
        else:
            names = [r["table_name"] for r in await tx.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        return {name: [tuple(row) for row in await tx.fetch(f"SELECT * FROM {name}")] for name in names}

    return await store.backend.read(read)


async def _populate(store, wall_clock, sweeper, tenant: str, sessions: tuple[str, ...]) -> list[int]:
    """A tenant with every kind of data the schema holds, media files and credential files; returns its ticket ids."""
    await store.upsert_tenant(tenant, tenant.title())
    user = await store.create_user(tenant, f"agent@{tenant}.example", "Agent")
    await store.set_retention(tenant, Retention(messages=365))
    hook = await store.create_webhook(tenant, f"https://hooks.example.com/{tenant}", ["*"])
    tickets = []
    for sid in sessions:
        await store.upsert_session(sid, tenant, "main")
        await store.set_credentials(sid, "simulated", f'{{"session": "{sid}"}}')
        (sweeper.auth_dir / f"{sid}.json").write_text("{}")
        (sweeper.auth_dir / f"{sid}.sqlite3").write_text("")
        (sweeper.journal_dir / f"{sid}.journal").write_bytes(b"")
        contact, found = await store.open_conversation(tenant, sid, f"55{len(sid)}@s.whatsapp.net", "Bob",
                                                       reopen_window=0)
        ticket = found.ticket
        tickets.append(ticket.id)
        await store.accept_ticket(ticket.id, user.id, fence=Fence(f"ticket:{ticket.id}", 1))
        await store.insert_messages([message(contact, f"{sid}-w{i}", ticket_id=ticket.id, session=sid)
                                     for i in range(9)])  # more than one batch (4)
        for m in (await store.list_messages(ticket.id))[:2]:
            await store.enqueue_media_job(tenant, m.id)
        await store.update_message_status(sid, "not-stored-yet", "delivered")  # an early receipt
        await store.enqueue_outbox(tenant, sid, f"key-{sid}", contact.jid, {"text": "hello"}, ticket_id=ticket.id)
        await store.set_paused(Queue.OUTBOX, True, session_id=sid)
        await store.append_audit("admin", "restart_session", f"/tenants/{tenant}/sessions/{sid}", "ok")
        await store.set_session_options(sid, '{"reject_calls": true}')
        await store.edit_message(sid, f"{sid}-w0", "edited", from_me=False)  # a message version
    jobs = await store.claim_jobs(Queue.MEDIA, limit=100)
    for job in jobs:
        relative = f"{tenant}/2023/11/{job.message_id}.jpg"
        (sweeper.media_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (sweeper.media_dir / relative).write_bytes(b"\xff\xd8\xff")
        await store.media_done(job.id, relative)
    await store.enqueue_webhook_event(tenant, "message.created", {"tenant": tenant})
    for i in range(6):  # more LID mappings than a batch
        await store.learn_lid(tenant, f"{len(tenant)}{i}000@lid", f"55{len(tenant)}{i}@s.whatsapp.net")
    await store.append_audit("admin", "set_retention", f"/tenants/{tenant}", "ok")
    campaign = await store.create_campaign(
        tenant, "Notice", template={"text": "hi {{name}}"}, sessions=sessions, schedule={}, pacing={},
        recipients=tuple(NewRecipient(f"55{i}", f"55{i}@s.whatsapp.net", {"name": f"C{i}"}) for i in range(6)))
    recipients = await store.list_recipients(campaign.id)
    await store.queue_recipient(tenant, recipients[0].id, sessions[0], cold=True)
    await store.contact_answered(tenant, sessions[0], recipients[1].jid, stop_word="stop")  # an opt-out
    assert hook.tenant_id == tenant
    return tickets


def _referring(tables: dict[str, list[tuple]], needle: str, tickets: list[int]) -> dict[str, list[tuple]]:
    """Rows holding ``needle`` in any text value, or naming one of ``tickets`` (fences, foreign keys)."""
    found = {}
    fences = {f"ticket:{t}" for t in tickets}
    for name, rows in tables.items():
        hits = [row for row in rows if any(isinstance(v, str) and (needle in v or v in fences) for v in row)]
        if name == "tickets":
            hits += [row for row in rows if row[0] in tickets]
        if hits:
            found[name] = hits
    return found


async def test_a_deleted_tenant_is_purged_from_every_table_after_its_grace(store, wall_clock, sweeper):
    doomed_tickets = await _populate(store, wall_clock, sweeper, DOOMED, DOOMED_SESSIONS)
    keeper_tickets = await _populate(store, wall_clock, sweeper, KEEPER, ("keeper-s1",))
    before = await _tables(store)
    assert set(_referring(before, "doomed", doomed_tickets)) >= {
        "tenants", "users", "sessions", "contacts", "tickets", "messages", "media_jobs", "outbox", "webhooks",
        "webhook_deliveries", "audit", "queue_pauses", "fence", "driver_credentials", "early_receipts",
        "tenant_retention", "session_options", "lid_map",
    }  # every table that can refer to a tenant does, so the check below means something
    await store.mark_session_deleted(DOOMED_SESSIONS[0], "deleted by request")
    await store.mark_tenant_deleted(DOOMED)

    early = await sweeper.run_once()  # within the grace period: nothing purged
    assert (early.sessions_purged, early.tenants_purged) == (0, 0)
    wall_clock.now += sweeper.settings.purge_grace + 1
    report = await sweeper.run_once()

    assert (report.sessions_purged, report.tenants_purged, report.errors) == (2, 1, 0)
    after = await _tables(store)
    assert _referring(after, "doomed", doomed_tickets) == {}
    assert (len(before["message_versions"]), len(after["message_versions"])) == (3, 1)  # by id, not by text
    kept = _referring(after, KEEPER, keeper_tickets)
    assert {name: len(rows) for name, rows in kept.items()} == {
        name: len(rows) for name, rows in _referring(before, KEEPER, keeper_tickets).items()}
    assert not (sweeper.media_dir / DOOMED).exists()
    assert sorted(p.name for p in sweeper.auth_dir.iterdir()) == ["keeper-s1.json", "keeper-s1.sqlite3"]
    assert [p.name for p in sweeper.journal_dir.iterdir()] == ["keeper-s1.journal"]
    assert len(list((sweeper.media_dir / KEEPER).rglob("*.jpg"))) == 2
    stats = sweeper.statistics()
    assert stats.rows["purge"] > 0 and stats.files["purge"] == 2 * 3 + 2 * 2  # credentials and journals + media


async def test_a_deleted_session_alone_is_purged_and_its_tenant_keeps_the_rest(store, wall_clock, sweeper):
    tickets = await _populate(store, wall_clock, sweeper, DOOMED, DOOMED_SESSIONS)
    await store.mark_session_deleted("doomed-s2", "deleted by request")
    wall_clock.now += sweeper.settings.purge_grace + 1
    report = await sweeper.run_once()
    assert (report.sessions_purged, report.tenants_purged) == (1, 0)
    after = await _tables(store)
    assert _referring(after, "doomed-s2", [tickets[1]]) == {}
    assert await store.get_session("doomed-s1") is not None
    assert len(await store.list_messages(tickets[0])) == 9
    assert not (sweeper.auth_dir / "doomed-s2.json").exists()
    assert len(after["contacts"]) == 1  # shared by both sessions: the tenant's address book stays
    assert (sweeper.auth_dir / "doomed-s1.json").exists()


async def test_an_immediate_purge_needs_no_grace(store, wall_clock, sweeper):
    await _populate(store, wall_clock, sweeper, DOOMED, DOOMED_SESSIONS)
    await store.mark_tenant_deleted(DOOMED)
    report = await sweeper.purge_tenant(DOOMED)
    assert report.tenants_purged == 1 and report.sessions_purged == 2
    assert report.rows["purge"] > 0 and report.files["purge"] == 10
    assert await store.get_tenant(DOOMED) is None
    again = await sweeper.purge_tenant(DOOMED)  # idempotent: nothing left, nothing fails
    assert again.rows["purge"] == 0
