"""Supervisor lifecycle beyond the OTP suite's named cases: start failures and
timeouts, intensity exceeded (stop order, blame, the root), nested shutdown order,
errors from the ``async with`` body. MockClock: elapsed times are exact."""

from __future__ import annotations

import math

import pytest
import trio

from supervisor import (
    AskTimeout,
    ChildSpec,
    ChildState,
    EventKind,
    ExitKind,
    SpecError,
    StartFailed,
    Strategy,
    SupervisorError,
    open_actor_system,
)

from ._kit import Plan, Raise, exits_of, ids, plans, settle, sup_spec

DIED = RuntimeError("died")


async def test_sup_start_timeout(autojump_clock):
    """A static child not ready within its start timeout fails the start at exactly
    that time; its siblings are stopped in reverse."""
    journal: list = []
    a, b, c = plans("a", "b", "c", journal=journal)
    c.start_delay = 100
    with pytest.raises(StartFailed, match="within 3"):
        async with open_actor_system([a.spec(shutdown=1), b.spec(shutdown=1), c.spec(start_timeout=3)]):
            pytest.fail("the system must not open")
    assert trio.current_time() == 3
    assert journal == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]


async def test_intensity_exceeded_stops_children_in_reverse(autojump_clock):
    """More than ``intensity`` restarts in ``period``: the supervisor stops its
    children in reverse start order and fails to its parent, which restarts it."""
    journal: list = []
    a, b, c = plans("a", "b", "c", journal=journal)
    sup = sup_spec("sup", [p.spec(shutdown=1) for p in (a, b, c)], intensity=1, period=10)
    async with open_actor_system([sup], intensity=5, period=10) as system:
        journal.clear()
        system.ref("/sup/a").tell(Raise(DIED))
        await settle()
        assert exits_of(system, "/sup") == []
        journal.clear()
        system.ref("/sup/a").tell(Raise(DIED))
        await settle()
        (reason,) = exits_of(system, "/sup")
        assert reason.startswith("abnormal: IntensityExceeded")
        assert journal == [
            ("stop", "a"),
            ("stop", "c"),
            ("stop", "b"),
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
        ]
        assert system.tree().find("/sup").restarts == 1
        assert system.tree().find("/sup").last_failure.type == "IntensityExceeded"


async def test_root_intensity_exceeded_raises_from_open_actor_system(autojump_clock):
    """When the root supervisor gives up, the system block is cancelled and
    SupervisorError is raised from it."""
    plan = Plan("child1")
    with pytest.raises(SupervisorError, match="IntensityExceeded"):
        async with open_actor_system([plan.spec(shutdown=1)], intensity=1, period=10) as system:
            system.ref("/child1").tell(Raise(DIED))
            await settle()
            system.ref("/child1").tell(Raise(DIED))
            await trio.sleep_forever()
    assert trio.current_time() == 0
    assert plan.journal[-1] == ("stop", "child1")


async def test_rest_for_one_leaves_a_terminated_sibling_stopped(autojump_clock):
    """A sibling stopped on purpose (terminate_child) is not revived by a group restart."""
    a, b, c = plans("a", "b", "c")
    sup = sup_spec("sup", [p.spec(shutdown=1) for p in (a, b, c)], strategy=Strategy.REST_FOR_ONE, intensity=3, period=60)
    async with open_actor_system([sup], intensity=10, period=60) as system:
        rest = system.supervisor("/sup")
        await rest.terminate_child("b")
        system.ref("/sup/a").tell(Raise(DIED))
        await settle()
        assert [(i.id, i.state) for i in rest.which_children()] == [
            ("a", ChildState.RUNNING),
            ("b", ChildState.STOPPED),
            ("c", ChildState.RUNNING),
        ]
        assert (len(a.starts), len(b.starts), len(c.starts)) == (2, 1, 2)


async def test_one_for_all_leaves_a_terminated_sibling_stopped(autojump_clock):
    """The documented deviation from OTP under one_for_all too: c's failure restarts a and c,
    not b, which an operator stopped; restart_child brings b back."""
    a, b, c = plans("a", "b", "c")
    sup = sup_spec("sup", [p.spec(shutdown=1) for p in (a, b, c)], strategy=Strategy.ONE_FOR_ALL, intensity=3, period=60)
    async with open_actor_system([sup], intensity=10, period=60) as system:
        group = system.supervisor("/sup")
        await group.terminate_child("b")
        system.ref("/sup/c").tell(Raise(DIED))
        await settle()
        assert [(i.id, i.state) for i in group.which_children()] == [
            ("a", ChildState.RUNNING),
            ("b", ChildState.STOPPED),
            ("c", ChildState.RUNNING),
        ]
        assert (len(a.starts), len(b.starts), len(c.starts)) == (2, 1, 2)
        await group.restart_child("b")
        assert len(b.starts) == 2


async def test_control_calls_time_out_at_60_s_and_still_happen(autojump_clock):
    """The other documented deviation: start_child waits CONTROL_TIMEOUT (60 s), not forever;
    the start goes on and completes all the same (here at 70 s)."""
    slow = Plan("slow", start_delay=70)
    async with open_actor_system([], intensity=10, period=60) as system:
        with pytest.raises(AskTimeout):
            await system.supervisor("/").start_child(slow.spec(start_timeout=100, shutdown=1))
        assert trio.current_time() == 60
        await trio.sleep_until(70)
        await settle()
        assert slow.starts == [70] and system.tree().find("/slow").state == "running"


async def test_nested_supervisor_stops_its_subtree_in_reverse(autojump_clock):
    """Shutting down stops a sub-supervisor's children (reverse order) before the
    sub-supervisor's earlier siblings; supervisors wait for their subtree (infinite grace)."""
    journal: list = []
    first, inner1, inner2, last = plans("first", "inner1", "inner2", "last", journal=journal)
    inner1.stop_delay = 4  # a supervisor's default grace is infinite: it waits
    inner = sup_spec("inner", [inner1.spec(shutdown=10), inner2.spec(shutdown=10)])
    async with open_actor_system([first.spec(), inner, last.spec()]):
        journal.clear()
        started = trio.current_time()
    assert trio.current_time() - started == 4
    assert journal == [("stop", "last"), ("stop", "inner2"), ("stop", "inner1"), ("stop", "first")]


async def test_restart_that_times_out_is_a_failed_start(autojump_clock):
    """A restart whose on_start exceeds start_timeout fails like any other start:
    counted toward intensity, retried, and the supervisor gives up at exactly
    crash + 2 timeouts (intensity 2)."""
    plan = Plan("slowpoke")
    sup = sup_spec("sup", [plan.spec(start_timeout=3, shutdown=1)], intensity=2, period=60)
    async with open_actor_system([sup], intensity=10, period=60) as system:
        plan.start_delay = 100
        system.ref("/sup/slowpoke").tell(Raise(DIED))
        await trio.sleep_until(6)
        await settle()
        (exited,) = [e for e in system.history() if e.kind is EventKind.EXITED and e.path == "/sup"]
        assert exited.at == 6
        failed = [e.at for e in system.history() if e.kind is EventKind.START_FAILED]
        assert failed[:2] == [3, 6]


async def test_start_child_rejects_a_non_spec(autojump_clock):
    async with open_actor_system() as system:
        with pytest.raises(SpecError, match="ChildSpec"):
            await system.supervisor("/").start_child("not a spec")
        assert ids(system.supervisor("/")) == []


async def test_body_error_shuts_the_system_down_gracefully(autojump_clock):
    """An error in the ``async with`` body stops the tree gracefully and propagates as is."""
    journal: list = []
    a, b = plans("a", "b", journal=journal)
    with pytest.raises(KeyError):
        async with open_actor_system([a.spec(), b.spec()]):
            raise KeyError("body")
    assert journal == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]
    assert [r.kind for r in a.stop_reasons + b.stop_reasons] == [ExitKind.NORMAL] * 2


@pytest.mark.parametrize(
    ("factory", "cause"),
    [
        (lambda: 1 / 0, ZeroDivisionError),
        (lambda: "not an actor", TypeError),
    ],
)
async def test_start_child_factory_errors_are_start_failures(autojump_clock, factory, cause):
    async with open_actor_system() as system:
        sup = system.supervisor("/")
        with pytest.raises(StartFailed) as failed:
            await sup.start_child(ChildSpec("odd", factory))
        assert isinstance(failed.value.cause, cause)
        assert ids(sup) == []


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_intensity_exceeded_names_the_failing_child(autojump_clock, strategy):
    """When a group restart exceeds intensity, the event and the error name the child
    whose failure caused it, not the first member of the group."""
    a, b, c = plans("a", "b", "c")
    sup = sup_spec("sup", [p.spec(shutdown=1) for p in (a, b, c)], strategy=strategy, intensity=1, period=60)
    async with open_actor_system([sup], intensity=5, period=60) as system:
        for _ in range(2):
            system.ref("/sup/b").tell(Raise(RuntimeError("b broke")))
            await settle()
        (exceeded,) = [e for e in system.history() if e.kind is EventKind.INTENSITY_EXCEEDED]
        assert exceeded.path == "/sup/b"
        (reason,) = exits_of(system, "/sup")
        assert "/sup/b" in reason and "b broke" in reason


async def test_a_supervisor_child_has_no_start_timeout_by_default(autojump_clock):
    """OTP gives supervisors no start timeout: a nested supervisor whose child takes
    30 s to be ready (its own start_timeout 60) starts at 30, not cut at 5 s.
    A worker still defaults to 5 s."""
    slow = Plan("slow", start_delay=30)
    async with open_actor_system([sup_spec("sup", [slow.spec(start_timeout=60, shutdown=1)])]) as system:
        assert trio.current_time() == 30
        assert system.tree().find("/sup/slow").state == "running"
    lazy = Plan("lazy", start_delay=30)
    with pytest.raises(StartFailed, match="within 5.0 s"):
        async with open_actor_system([lazy.spec()]):
            pytest.fail("the system must not open")


async def test_cancelling_the_owner_stops_the_tree_gracefully(autojump_clock):
    """The owner's scope is cancelled at 10: every child's on_stop still runs, in
    reverse start order (nested supervisor included), one second each, each with a
    shutdown reason; the Cancelled reaches the owner once the tree is down, at 14."""
    journal: list = []
    a, b, c, d = plans("a", "b", "c", "d", journal=journal, stop_delay=1)
    nested = sup_spec("sup", [c.spec(shutdown=5), d.spec(shutdown=5)])
    with trio.move_on_after(10) as scope:
        async with open_actor_system([a.spec(shutdown=5), b.spec(shutdown=5), nested]):
            journal.clear()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 14
    assert journal == [("stop", "d"), ("stop", "c"), ("stop", "b"), ("stop", "a")]
    assert {(r.kind, r.error_type) for p in (a, b, c, d) for r in p.stop_reasons} == {(ExitKind.NORMAL, "Shutdown")}


async def test_a_cancelled_owner_waits_no_longer_than_the_graces(autojump_clock):
    """A child whose on_stop hangs is cut at its grace (3 s): the cancelled owner is
    released at 10 + 3, after the well-behaved sibling's on_stop also ran."""
    journal: list = []
    calm, stuck = plans("calm", "stuck", journal=journal)
    stuck.stop_delay = math.inf
    with trio.move_on_after(10):
        async with open_actor_system([calm.spec(shutdown=5), stuck.spec(shutdown=3)]):
            journal.clear()
            await trio.sleep_forever()
    assert trio.current_time() == 13
    assert journal == [("stop", "stuck"), ("stop", "calm")]
