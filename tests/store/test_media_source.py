"""A message stored with a media source gets its download job in the same transaction (schema v2)."""

import attrs

from actors.store import JobStatus, Queue

from .helpers import message, seed


async def test_media_source_queues_one_job_with_the_message(store):
    contact = await seed(store)
    with_media = attrs.evolve(message(contact, "M1"), media_type="image", media_source='{"ref": "r1"}')
    first = await store.insert_message(with_media)
    again = await store.insert_message(with_media)  # a re-delivery: no second job
    plain = await store.insert_message(message(contact, "M2"))
    jobs = await store.list_jobs(Queue.MEDIA)
    assert [(job.message_id, job.source, job.status) for job in jobs] == [
        (first.message_id, '{"ref": "r1"}', JobStatus.QUEUED)
    ]
    assert again.message_id == first.message_id
    assert (await store.get_message_by_id(plain.message_id)).wa_id == "M2"
    assert await store.get_message_by_id(plain.message_id + 1000) is None
