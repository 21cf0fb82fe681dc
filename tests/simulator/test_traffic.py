"""The seeded traffic generator and the message builder."""

import random

import pytest
import trio
import trio.testing

from actors.simulator import TrafficSpec
from actors.simulator._traffic import BROADCAST_JID, build_message, contact_jid, generate_one, group_jid, run_traffic


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def test_same_seed_same_traffic():
    spec = TrafficSpec(media_share=0.5, group_share=0.3, broadcast_share=0.2, seed=11)
    rng_a, rng_b = random.Random(spec.seed), random.Random(spec.seed)
    first = [generate_one(spec, rng_a, 1.0) for _ in range(50)]
    assert first == [generate_one(spec, rng_b, 1.0) for _ in range(50)]
    assert all(message["id"].startswith("3EB0") for message in first)
    assert len({message["id"] for message in first}) == 50


def test_shares_shape_the_traffic():
    spec = TrafficSpec(contacts=5, groups=2, media_share=1.0, group_share=0.0, broadcast_share=1.0, seed=1)
    rng = random.Random(1)
    messages = [generate_one(spec, rng, 1.0) for _ in range(30)]
    assert all(m["chat"] == BROADCAST_JID and m["is_broadcast"] and m["media"] for m in messages)
    assert {m["sender"] for m in messages} <= {contact_jid(i) for i in range(5)}
    only_groups = TrafficSpec(groups=2, group_share=1.0, media_share=0.0)
    grouped = [generate_one(only_groups, rng, 1.0) for _ in range(30)]
    assert {m["chat"] for m in grouped} <= {group_jid(0), group_jid(1)} and all(m["is_group"] for m in grouped)
    assert not any(m["media"] for m in grouped)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"rate": 0}, "rate"), ({"media_share": -0.1}, "media_share"), ({"contacts": 0}, "contacts"),
    ({"count": 0}, "count"), ({"group_share": 0.7, "broadcast_share": 0.7}, "group_share"),
])
def test_bad_specs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrafficSpec(**kwargs)


async def test_rate_and_count_are_honoured_exactly(autojump_clock):
    spec = TrafficSpec(rate=100.0, count=50, seed=3)
    queued: list[tuple[str, dict]] = []
    started = trio.current_time()
    produced = await run_traffic(spec, lambda: ["b", "a"], lambda s, m: queued.append((s, m)), lambda: 0.0)
    assert produced == len(queued) == 50
    assert trio.current_time() - started == pytest.approx(0.5)  # 100/s → 50 messages in 0.5 s
    assert {session for session, _ in queued} == {"a", "b"}


async def test_no_candidates_no_traffic_until_one_appears(autojump_clock):
    sessions: list[str] = []
    queued: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_traffic, TrafficSpec(rate=20.0, count=2), lambda: sessions,
                           lambda s, m: queued.append(s), lambda: 0.0)
        await trio.sleep(1.0)
        assert queued == []
        sessions.append("late")
        await trio.sleep(0.2)
    assert queued == ["late", "late"]


def test_build_message_defaults_to_a_one_to_one_chat():
    message = build_message(sender=contact_jid(3), timestamp=5.0, text="hi")
    assert message["chat"] == contact_jid(3) and not message["is_group"] and not message["is_broadcast"]
    assert message["from_me"] is False and message["media"] is None
