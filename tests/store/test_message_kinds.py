"""Message kinds and operations on stored messages (schema ``_V_MESSAGE_KINDS``), on both backends."""

import attrs

from actors.store import JobStatus, Queue

from .helpers import message, seed


async def test_kind_and_payload_round_trip(store):
    contact = await seed(store)
    location = attrs.evolve(message(contact, "L1", body="📍 location: Office (1, 2)"), kind="location",
                            payload={"latitude": 1.0, "longitude": 2.0, "name": "Office"})
    stored = await store.get_message_by_id((await store.insert_message(location)).message_id)
    assert (stored.kind, stored.payload) == ("location", {"latitude": 1.0, "longitude": 2.0, "name": "Office"})
    plain = await store.get_message_by_id((await store.insert_message(message(contact, "T1"))).message_id)
    assert (plain.kind, plain.payload, plain.reactions, plain.edited_at, plain.deleted_at) == ("text", None, None,
                                                                                            None, None)


async def test_an_edit_keeps_the_replaced_texts_and_only_the_author_edits(store, wall_clock):
    contact = await seed(store)
    stored = await store.insert_message(message(contact, "E1", body="helo"))
    assert await store.edit_message("s1", "E1", "hijack", from_me=True) is None  # not ours: nothing changes
    wall_clock.now += 5
    edited = await store.edit_message("s1", "E1", "hello", from_me=False)
    assert (edited.previous_body, edited.message.body, edited.message.edited_at) == ("helo", "hello", wall_clock.now)
    again = await store.edit_message("s1", "E1", "hello", from_me=False)  # a re-delivered edit
    assert again.previous_body == "hello"
    await store.edit_message("s1", "E1", "hello!", from_me=False)
    versions = await store.message_versions(stored.message_id)
    assert [v.body for v in versions] == ["helo", "hello"]
    assert (await store.get_message_by_id(stored.message_id)).body == "hello!"
    assert await store.edit_message("s1", "NOPE", "x", from_me=False) is None


async def test_revoke_marks_deleted_once_and_keeps_the_text(store, wall_clock):
    contact = await seed(store)
    await store.insert_message(message(contact, "R1", body="secret"))
    first = await store.revoke_message("s1", "R1")
    wall_clock.now += 10
    second = await store.revoke_message("s1", "R1")
    assert first.deleted_at == second.deleted_at == 1_700_000_000.0
    assert second.body == "secret"
    assert await store.revoke_message("s1", "NOPE") is None


async def test_reactions_are_one_per_sender_changed_and_removed(store):
    contact = await seed(store)
    await store.insert_message(message(contact, "X1"))
    await store.react_to_message("s1", "X1", "a@s.whatsapp.net", "👍")
    await store.react_to_message("s1", "X1", "b@s.whatsapp.net", "❤️")
    changed = await store.react_to_message("s1", "X1", "a@s.whatsapp.net", "😂")
    assert changed.reactions == {"a@s.whatsapp.net": "😂", "b@s.whatsapp.net": "❤️"}
    await store.react_to_message("s1", "X1", "a@s.whatsapp.net", "")
    removed = await store.react_to_message("s1", "X1", "b@s.whatsapp.net", "")
    assert removed.reactions is None
    assert await store.react_to_message("s1", "NOPE", "a@s.whatsapp.net", "👍") is None


async def test_a_placeholder_takes_the_resent_content_with_its_media_job(store):
    contact = await seed(store)
    placeholder = attrs.evolve(message(contact, "U1", body="waiting"), kind="undecryptable",
                               payload={"unavailable": False})
    stored = await store.insert_message(placeholder)
    resent = attrs.evolve(message(contact, "U1", body="the photo"), kind="image", payload={"mimetype": "image/png"},
                          media_type="image", media_source='{"ref": "r9"}')
    filled = await store.fill_placeholder(resent)
    assert (filled.id, filled.kind, filled.body, filled.payload, filled.media_type) == (
        stored.message_id, "image", "the photo", {"mimetype": "image/png"}, "image")
    jobs = await store.list_jobs(Queue.MEDIA)
    assert [(job.message_id, job.status) for job in jobs] == [(stored.message_id, JobStatus.QUEUED)]
    assert await store.fill_placeholder(resent) is None  # no placeholder any more: an ordinary re-delivery
