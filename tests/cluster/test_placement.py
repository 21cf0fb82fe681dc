"""Placement and reconcile plans are pure: tested without a loop, on thousands of sessions."""

from __future__ import annotations

import collections

import actors.cluster
from actors.cluster import HANDOFF_BATCH, Member, place, plan, ranking

SESSIONS = [f"s{i}" for i in range(3000)]


def members(*spec: tuple[str, int]) -> list[Member]:
    return [Member(node, f"http://{node}", capacity) for node, capacity in spec]


def test_exports_are_pinned():
    assert sorted(actors.cluster.__all__) == [
        "CHANNEL", "HANDOFF_BATCH", "Member", "Membership", "Peer", "Plan", "StoredCredentials", "place", "plan", "ranking", "score",
    ]


def test_every_session_has_one_owner_and_shares_follow_capacity():
    owners = place(SESSIONS, members(("a", 10_000), ("b", 10_000), ("c", 20_000)))
    assert set(owners) == set(SESSIONS)
    counts = collections.Counter(owners.values())
    assert abs(counts["c"] / len(SESSIONS) - 0.5) < 0.05  # twice the weight: half the sessions
    assert abs(counts["a"] - counts["b"]) < 0.1 * len(SESSIONS)


def test_the_same_inputs_give_the_same_answer_in_any_order():
    cluster = members(("a", 100), ("b", 100), ("c", 100))
    assert place(SESSIONS[:250], cluster) == place(list(reversed(SESSIONS[:250])), list(reversed(cluster)))


def test_a_join_moves_only_what_the_new_node_takes_and_a_leave_only_what_it_had():
    before = place(SESSIONS, members(("a", 10_000), ("b", 10_000), ("c", 10_000)))
    joined = place(SESSIONS, members(("a", 10_000), ("b", 10_000), ("c", 10_000), ("d", 10_000)))
    moved = [s for s in SESSIONS if before[s] != joined[s]]
    assert all(joined[s] == "d" for s in moved)
    assert abs(len(moved) / len(SESSIONS) - 0.25) < 0.05
    left = place(SESSIONS, members(("a", 10_000), ("c", 10_000)))
    assert all(left[s] == before[s] for s in SESSIONS if before[s] != "b")


def test_capacity_is_respected_until_the_cluster_is_full():
    owners = place(SESSIONS[:20], members(("a", 8), ("b", 8), ("c", 8)))
    assert max(collections.Counter(owners.values()).values()) <= 8
    overfull = place(SESSIONS[:30], members(("a", 8), ("b", 8), ("c", 8)))
    assert len(overfull) == 30  # beyond capacity: first choices (they queue there)


def test_draining_members_own_nothing_and_no_member_means_no_owner():
    cluster = [*members(("a", 100), ("b", 100)), Member("c", None, 100, draining=True)]
    assert set(place(SESSIONS[:300], cluster).values()) == {"a", "b"}
    assert "c" not in ranking("s1", cluster)
    assert place(SESSIONS[:5], [Member("c", None, 100, draining=True)]) == {}


def test_plan_starts_mine_hands_off_theirs_in_batches_and_forgets_the_unwanted():
    owners = {f"s{i}": ("me" if i % 2 else "other") for i in range(200)}
    running = {f"s{i}" for i in range(0, 200, 2)} | {"gone"}
    changes = plan("me", owners, owners, running)
    assert set(changes.start) == {s for s, o in owners.items() if o == "me"}
    assert len(changes.hand_off) == HANDOFF_BATCH and all(owners[s] == "other" for s in changes.hand_off)
    assert changes.forget == ("gone",)
    # a session no member may own (every member draining) stays where it runs
    assert plan("me", ["s0"], {}, {"s0"}).hand_off == ()
