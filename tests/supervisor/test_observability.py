"""Observability: stable paths, the frozen tree snapshot, the lifecycle event
stream (slow subscribers dropped, never blocking) and the recent history."""

from __future__ import annotations

import json

import attrs
import pytest
import trio

from supervisor import (
    ActorSnapshot,
    Backoff,
    ChildNotFound,
    ChildSpec,
    CircuitBreaker,
    Escalate,
    EventKind,
    Failure,
    Jitter,
    LifecycleEvent,
    StartFailed,
    Strategy,
    Supervisor,
    open_actor_system,
)

from ._kit import Echo, Plan, Raise, Sleep, settle

BOOM = RuntimeError("boom")


def services(outbox: Plan) -> ChildSpec:
    spec = outbox.spec(
        mailbox=50,
        backoff=Backoff(min=5, max=5, jitter=Jitter.NONE),
        breaker=CircuitBreaker(threshold=5, window=60, cooldown=300),
    )
    return ChildSpec("services", lambda: Supervisor([spec], intensity=10, period=60))


async def test_paths_are_stable_and_nested(autojump_clock):
    """Static and dynamic children get paths from their ids: /services/outbox,
    /tenants/t1/sessions/42; refs resolve them."""
    tenants = ChildSpec("tenants", lambda: Supervisor(intensity=10, period=60))
    async with open_actor_system([services(Plan("outbox")), tenants]) as system:
        await system.supervisor("/tenants").start_child(ChildSpec("t1", lambda: Supervisor()))
        await system.supervisor("/tenants/t1").start_child(ChildSpec("sessions", lambda: Supervisor()))
        session = await system.supervisor("/tenants/t1/sessions").start_child(Plan("42").spec())
        assert session.path == "/tenants/t1/sessions/42"
        assert await system.ref("/tenants/t1/sessions/42").ask(Echo("hi")) == "hi"
        assert await system.ref("/services/outbox").ask(Echo(1)) == 1
        assert [s.path for s in system.tree().walk()] == [
            "/",
            "/services",
            "/services/outbox",
            "/tenants",
            "/tenants/t1",
            "/tenants/t1/sessions",
            "/tenants/t1/sessions/42",
        ]
        assert set(system.paths()) == {s.path for s in system.tree().walk()}


async def test_tree_snapshot_fields(autojump_clock):
    outbox = Plan("outbox")
    async with open_actor_system([services(outbox)]) as system:
        ref = system.ref("/services/outbox")
        for n in range(3):
            await ref.ask(Echo(n))
        ref.tell(Sleep(2))
        for n in range(4):
            ref.tell(Echo(n))
        await trio.sleep(1)
        tree = system.tree()
        assert isinstance(tree, ActorSnapshot)
        assert (tree.path, tree.id, tree.kind, tree.strategy, tree.mailbox_capacity) == (
            "/",
            "root",
            "supervisor",
            "one_for_one",
            None,
        )
        assert [c.path for c in tree.children] == ["/services"]
        snap = tree.find("/services/outbox")
        assert snap == ActorSnapshot(
            path="/services/outbox",
            id="outbox",
            kind="worker",
            state="running",
            restart="permanent",
            restarts=0,
            last_failure=None,
            breaker="closed",
            backoff_until=None,
            mailbox_depth=4,
            mailbox_capacity=50,
            processed=3,
            uptime=1,
        )
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            snap.state = "stopped"
        json.dumps(tree.to_dict())  # enums and nested snapshots serialise

        await trio.sleep_until(12)
        ref.tell(Raise(BOOM))
        await settle()
        snap = system.tree().find("/services/outbox")
        assert (snap.state, snap.backoff_until, snap.uptime, snap.restarts) == ("backoff", 17, None, 0)
        assert snap.last_failure == Failure(type="RuntimeError", message="boom", kind="abnormal", at=12)

        await trio.sleep_until(20)
        await settle()
        snap = system.tree().find("/services/outbox")
        assert (snap.state, snap.backoff_until, snap.uptime, snap.restarts, snap.processed) == (
            "running",
            None,
            3,
            1,
            0,
        )
        assert snap.last_failure.at == 12
        assert system.tree().find("/nowhere") is None


async def test_event_stream_of_a_crash_and_restart(autojump_clock):
    async with open_actor_system([services(Plan("outbox"))]) as system:
        with system.events() as events:
            await trio.sleep(3)
            system.ref("/services/outbox").tell(Raise(BOOM))
            seen = [await events.receive() for _ in range(3)]
        assert [(e.kind, e.path, e.at) for e in seen] == [
            (EventKind.EXITED, "/services/outbox", 3),
            (EventKind.RESTART_SCHEDULED, "/services/outbox", 3),
            (EventKind.RESTARTED, "/services/outbox", 8),
        ]
        assert seen[0].reason == "abnormal: RuntimeError: boom"
        assert seen[1].delay == 5
        assert seen[2].to_dict() == {
            "kind": "restarted",
            "path": "/services/outbox",
            "at": 8,
            "reason": "",
            "delay": None,
            "breaker": None,
        }
        assert not events.dropped


async def test_a_slow_subscriber_is_dropped_and_never_blocks(autojump_clock):
    plan = Plan("flappy")
    async with open_actor_system([plan.spec()], intensity=100, period=60) as system:
        slow = system.events(buffer=2)
        keeping_up = system.events()
        for _ in range(3):
            system.ref("/flappy").tell(Raise(BOOM))
            await settle()
        assert len(plan.starts) == 4  # the runtime went on without the slow reader
        assert slow.dropped and not keeping_up.dropped
        buffered = [event async for event in slow]  # what fitted, then the end
        assert [e.kind for e in buffered] == [EventKind.EXITED, EventKind.RESTART_SCHEDULED]
        kinds = []
        for _ in range(9):
            kinds.append((await keeping_up.receive()).kind)
        assert kinds == [EventKind.EXITED, EventKind.RESTART_SCHEDULED, EventKind.RESTARTED] * 3
        keeping_up.close()


async def test_subscriptions_end_when_the_system_closes(autojump_clock):
    async with open_actor_system([Plan("a").spec()]) as system:
        events = system.events()
    assert [e async for e in events] == []
    assert not events.dropped


async def test_history_is_the_recent_events_oldest_first(autojump_clock):
    async with open_actor_system([services(Plan("outbox"))]) as system:
        await trio.sleep(1)
        system.ref("/services/outbox").tell(Raise(BOOM))
        await trio.sleep(10)
        history = system.history()
    assert isinstance(history, tuple) and all(isinstance(e, LifecycleEvent) for e in history)
    assert [(e.kind, e.path, e.at) for e in history] == [
        (EventKind.STARTED, "/services/outbox", 0),
        (EventKind.STARTED, "/services", 0),
        (EventKind.STARTED, "/", 0),
        (EventKind.EXITED, "/services/outbox", 1),
        (EventKind.RESTART_SCHEDULED, "/services/outbox", 1),
        (EventKind.RESTARTED, "/services/outbox", 6),
    ]
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert system.wall_time(6) - system.wall_time(1) == pytest.approx(5)


async def test_paths_of_a_subtree_that_is_gone_do_not_resolve(autojump_clock):
    """Paths name live slots only: a deleted supervisor's descendants, a supervisor
    whose start failed, and the dynamic children a restarted supervisor lost all
    disappear from paths() and raise ChildNotFound."""
    async with open_actor_system(
        [ChildSpec("sup", lambda: Supervisor([Plan("w").spec()])), ChildSpec("tenants", lambda: Supervisor())],
        intensity=10,
        period=60,
    ) as system:
        root = system.supervisor("/")
        await root.terminate_child("sup")
        await root.delete_child("sup")

        broken = ChildSpec("broken", lambda: Supervisor([Plan("ok").spec(), Plan("bad", fail_start=True).spec()]))
        with pytest.raises(StartFailed):
            await root.start_child(broken)

        tenants = system.supervisor("/tenants")
        await tenants.start_child(Plan("t1").spec())
        system.ref("/tenants/t1").tell(Raise(Escalate("tenant lost")))  # /tenants fails and restarts
        await settle()
        assert system.tree().find("/tenants").restarts == 1

        assert sorted(system.paths()) == ["/", "/tenants"]
        for gone in ("/sup", "/sup/w", "/broken", "/broken/ok", "/broken/bad", "/tenants/t1"):
            with pytest.raises(ChildNotFound):
                system.ref(gone)


async def test_states_seen_in_the_tree(autojump_clock):
    """starting → running → stopping → stopped, and backoff for a whole one_for_all group."""
    slow = Plan("slow", start_delay=2, stop_delay=3)
    group = ChildSpec(
        "group",
        lambda: Supervisor(
            [p.spec(backoff=Backoff(min=4, max=4, jitter=Jitter.NONE)) for p in (Plan("a"), Plan("b"))],
            strategy=Strategy.ONE_FOR_ALL,
            intensity=5,
            period=60,
        ),
    )
    async with open_actor_system([group]) as system:
        sup = system.supervisor("/")
        seen: list[tuple[float, str]] = []

        async def watch(path: str, until: float) -> None:
            await trio.sleep(0.25)  # sample between the transitions, never on them
            while trio.current_time() < until:
                snap = system.tree().find(path)
                state = snap.state if snap is not None else "absent"
                if not seen or seen[-1][1] != state:
                    seen.append((trio.current_time(), state))
                await trio.sleep(0.5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, "/slow", 8)
            await sup.start_child(slow.spec(shutdown=10))
            await trio.sleep(1)
            await sup.terminate_child("slow")
        # start_child at 0 (ready at 2), terminate_child at 3 (on_stop takes 3 s)
        assert seen == [(0.25, "starting"), (2.25, "running"), (3.25, "stopping"), (6.25, "stopped")]

        system.ref("/group/a").tell(Raise(BOOM))
        await settle()
        now = trio.current_time()
        assert [(s.state, s.backoff_until) for s in system.tree().find("/group").children] == [("backoff", now + 4)] * 2
        await trio.sleep(4)
        await settle()
        assert [s.state for s in system.tree().find("/group").children] == ["running", "running"]
