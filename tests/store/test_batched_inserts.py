"""A run of message inserts inside one batch is executed together; each caller still gets its own answer."""

import attrs
import pytest
import trio
import trio.testing

from actors.store import AlreadyStored, Inserted, InvalidInput, Queue, WriteFailed, open_store

from .helpers import message, seed

#: Long enough for every caller of a test to queue before the writer takes the batch, even on a
#: loaded machine (a test's callers queue within milliseconds).
_LINGER = 0.5

#: Beyond a 64-bit integer column on both engines: the driver refuses to bind it.
_OUT_OF_RANGE = 2**63


async def _together(store, calls):
    """Call every ``(name, async fn)`` concurrently, submitting in list order (each caller is
    parked on its write before the next starts); return ({name: result or WriteFailed}, batches)."""
    answers = {}

    async def call(name, fn):
        try:
            answers[name] = await fn()
        except WriteFailed as failed:
            answers[name] = failed

    before = store.statistics().batches
    async with trio.open_nursery() as nursery:
        for name, fn in calls:
            nursery.start_soon(call, name, fn)
            await trio.testing.wait_all_tasks_blocked()
    return answers, store.statistics().batches - before


async def test_mixed_ops_and_duplicates_in_one_batch_answer_each_caller(store, make_backend, wall_clock):
    contact = await seed(store)
    ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    old = await store.insert_message(message(contact, "OLD", ticket_id=ticket.id, sent_at=1))
    async with open_store(make_backend(), clock=wall_clock, linger=_LINGER) as lingering:

        def insert(wa_id, sent_at, body="hi"):
            new = message(contact, wa_id, ticket_id=ticket.id, sent_at=sent_at, body=body)
            return lambda: lingering.insert_message(new)

        answers, batches = await _together(lingering, [
            ("a", insert("A", 2, "first a")),
            ("tenant", lambda: lingering.upsert_tenant("other", "Other")),  # splits the run of inserts
            ("a-again", insert("A", 9, "second a")),  # same key as "a", later in the same batch
            ("old-again", insert("OLD", 9)),  # stored by an earlier batch
            ("b", insert("B", 3, "newest")),
            ("read", lambda: lingering.mark_ticket_read(ticket.id)),
            ("c", insert("C", 2.5, "older than b")),
        ])
    assert batches == 1
    assert isinstance(answers["a"], Inserted) and isinstance(answers["b"], Inserted)
    assert isinstance(answers["c"], Inserted)
    assert answers["a-again"] == AlreadyStored(answers["a"].message_id)
    assert answers["old-again"] == AlreadyStored(old.message_id)
    assert answers["tenant"].id == "other"
    # ops apply in submit order: "b" had bumped the ticket before "read" reset its counter
    assert answers["read"].unread == 0 and answers["read"].last_message == "newest"
    assert answers["a"].message_id < answers["b"].message_id < answers["c"].message_id  # submit order
    stored = await store.get_message("s1", "A")
    assert stored.body == "first a"  # the duplicate changed nothing
    bumped = await store.get_ticket(ticket.id)
    assert bumped.unread == 1  # only "c" came after "read"; duplicates count nothing
    assert bumped.last_message == "newest"  # latest sent_at wins, not the last submitted
    assert await store.count_messages() == 4


async def test_a_bad_row_in_a_run_of_inserts_fails_only_its_caller(store, make_backend, wall_clock):
    contact = await seed(store)
    async with open_store(make_backend(), clock=wall_clock, linger=_LINGER) as lingering:
        bad = attrs.evolve(message(contact, "BAD"), contact_id=_OUT_OF_RANGE)
        calls = [(f"m{i}", (lambda i=i: lingering.insert_message(message(contact, f"M{i}")))) for i in range(30)]
        calls.insert(15, ("bad", lambda: lingering.insert_message(bad)))
        calls.insert(7, ("dup", lambda: lingering.insert_message(message(contact, "M20"))))
        answers, _ = await _together(lingering, calls)
        assert isinstance(answers.pop("bad"), WriteFailed)
        duplicate = answers.pop("dup")  # submitted before "m20", with the same key
        assert isinstance(duplicate, Inserted) and answers.pop("m20") == AlreadyStored(duplicate.message_id)
        assert all(isinstance(answer, Inserted) for answer in answers.values()) and len(answers) == 29
        assert await store.count_messages() == 30 and await store.get_message("s1", "BAD") is None
        stats = lingering.statistics()
        assert stats.fallbacks == 1 and stats.failed_ops == 1


@pytest.mark.parametrize("count", [1, 300])
async def test_a_run_of_duplicates_is_looked_up_together(store, count):
    contact = await seed(store)
    first = [await store.insert_message(message(contact, f"D{i}")) for i in range(count)]
    again = []

    async def insert(i):
        again.append((i, await store.insert_message(message(contact, f"D{i}", body="redelivered"))))

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(insert, i)
    assert sorted(again) == [(i, AlreadyStored(first[i].message_id)) for i in range(count)]
    assert await store.count_messages() == count


async def test_insert_messages_stores_a_run_in_one_write_with_one_answer_each(store):
    contact = await seed(store)
    ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
    old = await store.insert_message(message(contact, "OLD", ticket_id=ticket.id, sent_at=1))

    def new(wa_id, sent_at, body, from_me=False):
        return message(contact, wa_id, ticket_id=ticket.id, sent_at=sent_at, body=body, from_me=from_me)

    before = store.statistics()
    results = await store.insert_messages([
        new("A", 2, "first a"),
        new("OLD", 9, "old again"),  # stored before this run
        new("B", 5, "newest"),
        new("A", 9, "a again"),  # earlier in the same run
        new("C", 3, "older than b"),
        new("D", 4, "typed on the phone", from_me=True),
    ])
    after = store.statistics()
    assert (after.batches - before.batches, after.ops - before.ops) == (1, 1)
    a, old_again, b, a_again, c, d = results
    assert all(isinstance(result, Inserted) for result in (a, b, c, d))
    assert a.message_id < b.message_id < c.message_id < d.message_id  # run order
    assert a_again == AlreadyStored(a.message_id) and old_again == AlreadyStored(old.message_id)
    assert (await store.get_message("s1", "A")).body == "first a"  # the duplicate changed nothing
    bumped = await store.get_ticket(ticket.id)
    # OLD + A, B, C inbound (D is from me, duplicates count nothing); the latest sent_at wins
    assert (bumped.unread, bumped.last_message, bumped.last_message_at) == (4, "newest", 5)
    assert await store.count_messages() == 5


async def test_insert_messages_of_an_empty_run_writes_nothing(store):
    before = store.statistics()
    assert await store.insert_messages([]) == []
    assert (store.statistics().batches, store.statistics().ops) == (before.batches, before.ops)


@pytest.mark.parametrize("duplicate_at", [None, 0, 2, 4])  # None: every row new (SQLite reads no ids back)
async def test_each_answered_id_is_the_stored_rows_id(store, duplicate_at):
    contact = await seed(store)
    await store.insert_message(message(contact, "OLD"))
    run = [message(contact, f"N{i}", body=f"body {i}") for i in range(5)]
    if duplicate_at is not None:
        run[duplicate_at] = message(contact, "OLD", body="redelivered")
    results = await store.insert_messages(run)
    for sent, result in zip(run, results):
        stored = await store.get_message("s1", sent.wa_id)
        assert result.message_id == stored.id
        assert isinstance(result, AlreadyStored) == (sent.wa_id == "OLD")
    assert (await store.get_message("s1", "OLD")).body == "hi"
    assert await store.count_messages() == 1 + sum(m.wa_id != "OLD" for m in run)


async def test_optional_columns_empty_in_all_or_some_of_a_run_are_stored_per_message(store):
    # PostgreSQL passes a column that is NULL for the whole run as one NULL array (unnest pads it):
    # a run where it is set for one message only, and a run where it is set for none, both store
    # exactly what each message had
    contact = await seed(store)
    full = attrs.evolve(
        message(contact, "FULL", body="caption"), media_type="image", quoted_wa_id="Q1",
        kind="image", payload={"caption": "caption"}, media_source='{"url": "u"}',
    )
    plain = [message(contact, f"P{i}") for i in range(3)]
    await store.insert_messages([plain[0], full, plain[1]])
    await store.insert_messages([plain[2]])
    stored = await store.get_message("s1", "FULL")
    assert (stored.media_type, stored.quoted_wa_id, stored.kind, stored.payload) == (
        "image", "Q1", "image", {"caption": "caption"}
    )
    for m in plain:
        stored = await store.get_message("s1", m.wa_id)
        assert (stored.media_type, stored.quoted_wa_id, stored.kind, stored.payload, stored.raw_body) == (
            None, None, "text", None, None
        )
    jobs = await store.list_jobs(Queue.MEDIA)
    full_id = (await store.get_message("s1", "FULL")).id
    assert [(job.message_id, job.source) for job in jobs] == [(full_id, '{"url": "u"}')]


async def test_a_write_that_is_no_message_or_has_no_time_is_refused_before_anything_is_written(store):
    # insert_message goes to the writer without insert_messages' checks: it must refuse the same
    contact = await seed(store)
    for call in (
        lambda: store.insert_message("M1"),
        lambda: store.insert_messages([message(contact, "M1"), "M2"]),
        lambda: store.fill_placeholder("M1"),
    ):
        with pytest.raises(InvalidInput, match="message: must be a NewMessage, got str"):
            await call()
    with pytest.raises(InvalidInput, match="timeout: must be > 0 seconds"):
        await store.insert_message(message(contact, "M1"), timeout=0)
    assert await store.count_messages() == 0
