"""Janitor runs on both backends: defaults and tenant overrides per kind, media files removed from
disk, counters; a bad row (a tenant's retention the store refuses, a media path leading out of the
media directory) fails only itself."""

from __future__ import annotations

import logging

import attrs

from actors.store import Queue, Retention

from tests.store.helpers import message

DAY = 86400.0


async def _tenant_with_old_media(store, wall_clock, sweeper, tenant: str, *, age_days: float = 10) -> int:
    """A tenant whose session has 6 messages ``age_days`` old, 2 of them with a file; returns the ticket id."""
    await store.upsert_tenant(tenant, tenant)
    await store.upsert_session(f"{tenant}-s", tenant, "main")
    now = wall_clock.now
    wall_clock.now = now - age_days * DAY
    contact, found = await store.open_conversation(tenant, f"{tenant}-s", "5511@s.whatsapp.net", reopen_window=0)
    await store.insert_messages([message(contact, f"w{i}", ticket_id=found.ticket.id, session=f"{tenant}-s")
                                 for i in range(6)])
    for m in (await store.list_messages(found.ticket.id))[:2]:
        await store.enqueue_media_job(tenant, m.id)
    for job in await store.claim_jobs(Queue.MEDIA, limit=10):
        path = f"{tenant}/{job.message_id}.jpg"
        (sweeper.media_dir / tenant).mkdir(exist_ok=True)
        (sweeper.media_dir / path).write_bytes(b"\xff\xd8\xff")
        await store.media_done(job.id, path)
    wall_clock.now = now
    return found.ticket.id


async def test_defaults_and_overrides_per_kind(store, wall_clock, sweeper):
    sweeper.settings = attrs.evolve(sweeper.settings, media_days=7)  # messages: kept forever by default
    keeps = await _tenant_with_old_media(store, wall_clock, sweeper, "keeps")
    drops = await _tenant_with_old_media(store, wall_clock, sweeper, "drops")
    forever = await _tenant_with_old_media(store, wall_clock, sweeper, "forever")
    await store.set_retention("drops", Retention(messages=7))
    await store.set_retention("forever", Retention(media=0))

    report = await sweeper.run_once()

    assert report.rows == {"media": 2, "messages": 6}  # keeps' media files; drops' messages (their files too)
    assert report.files == {"media": 2, "messages": 2}
    assert [m.media_path for m in await store.list_messages(keeps)].count(None) == 6
    assert await store.list_messages(drops) == []
    assert sorted(p.name for p in sweeper.media_dir.rglob("*.jpg")) == sorted(
        p.name for p in (sweeper.media_dir / "forever").iterdir())
    assert len([m for m in await store.list_messages(forever) if m.media_path]) == 2
    stats = sweeper.statistics()
    assert (stats.runs, stats.errors) == (1, 0)
    assert {kind: n for kind, n in stats.rows.items() if n} == report.rows
    assert {kind: n for kind, n in stats.files.items() if n} == report.files
    assert set(stats.rows) == {"messages", "media", "closed_tickets", "webhook_deliveries", "audit", "purge"}
    assert stats.last_duration == report.duration


async def test_a_bad_row_fails_only_itself(store, wall_clock, sweeper, caplog):
    sweeper.settings = attrs.evolve(sweeper.settings, messages_days=7)
    await _tenant_with_old_media(store, wall_clock, sweeper, "bad")
    good = await _tenant_with_old_media(store, wall_clock, sweeper, "good")
    outside = sweeper.media_dir.parent / "precious.txt"
    outside.write_text("not the janitor's")

    async def vandalise(tx):  # what no API accepts, as a damaged or hand-edited database may hold
        await tx.execute("INSERT INTO tenant_retention (tenant_id, messages, updated_at) VALUES ('bad', -3, 0)")
        await tx.execute("UPDATE messages SET media_path = '../precious.txt' WHERE id = "
                         "(SELECT MIN(id) FROM messages WHERE tenant_id = 'good')")

    await store.backend.run_batch(vandalise)
    with caplog.at_level(logging.ERROR, "zapvisor.lifecycle"):
        report = await sweeper.run_once()
    assert report.errors == 1  # the bad tenant's messages; the stray path is counted below
    assert sweeper.statistics().errors == 2
    assert await store.list_messages(good) == []  # swept all the same
    assert outside.read_text() == "not the janitor's"
    assert "messages of tenant bad failed" in caplog.text and "leads outside" in caplog.text
    assert report.rows["messages"] == 6


async def test_a_large_backlog_goes_in_bounded_batches(store, wall_clock, sweeper):
    sweeper.settings = attrs.evolve(sweeper.settings, messages_days=1, batch_size=50)
    await store.upsert_tenant("big", "Big")
    await store.upsert_session("big-s", "big", "main")
    wall_clock.now -= 2 * DAY
    contact, found = await store.open_conversation("big", "big-s", "5511@s.whatsapp.net", reopen_window=0)
    for start in range(0, 1000, 200):
        await store.insert_messages([message(contact, f"w{i}", ticket_id=found.ticket.id, session="big-s")
                                     for i in range(start, start + 200)])
    wall_clock.now += 2 * DAY
    batches_before = store.statistics().batches
    report = await sweeper.run_once()
    assert report.rows == {"messages": 1000}
    assert store.statistics().batches - batches_before >= 1000 // 50  # one short transaction per batch
    assert await store.count_messages("big-s") == 0
