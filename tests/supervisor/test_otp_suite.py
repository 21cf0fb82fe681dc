"""Erlang/OTP's ``supervisor_SUITE`` ported as black-box tests of the runtime.

Each test is named after the OTP case it ports (lib/stdlib/test/supervisor_SUITE.erl)
and keeps its intent: OTP's ``terminate(Sup, Pid, Id, normal | abnormal)`` is a
worker raising :class:`Shutdown` or an ordinary exception; OTP's pids are the
incarnation serials returned by ``Who()``; ``check_exit([SupPid])`` is the
supervisor's own ``exited`` event seen by its parent.
Every test runs under ``MockClock(autojump_threshold=0)``: elapsed times are exact.
"""

from __future__ import annotations

import math

import pytest
import trio

from supervisor import (
    BRUTAL_KILL,
    ActorStopped,
    AlreadyPresent,
    AlreadyStarted,
    Backoff,
    ChildCounts,
    ChildError,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildState,
    EventKind,
    ExitKind,
    Jitter,
    Restart,
    Shutdown,
    SpecError,
    StartFailed,
    Strategy,
    open_actor_system,
)

from ._kit import Plan, Raise, Sleep, Who, exits_of, ids, plans, settle, sup_spec

DIED = RuntimeError("died")


def counts(specs: int, active: int, supervisors: int, workers: int) -> ChildCounts:
    return ChildCounts(specs=specs, active=active, supervisors=supervisors, workers=workers)


# -- normal / abnormal termination ---------------------------------------------------


async def test_permanent_normal(autojump_clock):
    """A permanent child is restarted after a normal exit."""
    plan = Plan("child1")
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(shutdown=1))
        first = await ref.ask(Who())
        ref.tell(Raise(Shutdown("normal")))
        await settle()
        assert ids(sup) == ["child1"]
        assert sup.which_children()[0].state is ChildState.RUNNING
        assert await ref.ask(Who()) != first
        assert sup.count_children() == counts(1, 1, 0, 1)


async def test_transient_normal(autojump_clock):
    """A transient child is not restarted after a normal exit; its spec stays."""
    plan = Plan("child1")
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(restart=Restart.TRANSIENT, shutdown=1))
        ref.tell(Raise(Shutdown("normal")))
        await settle()
        assert ids(sup) == ["child1"]
        assert sup.which_children()[0].state is ChildState.STOPPED
        assert sup.count_children() == counts(1, 0, 0, 1)
        assert len(plan.starts) == 1
        with pytest.raises(ActorStopped):
            ref.tell(Who())


async def test_temporary_normal(autojump_clock):
    """A temporary child is never restarted and its spec is dropped."""
    plan = Plan("child1")
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(restart=Restart.TEMPORARY, shutdown=1))
        ref.tell(Raise(Shutdown("normal")))
        await settle()
        assert ids(sup) == []
        assert sup.count_children() == counts(0, 0, 0, 0)
        with pytest.raises(ChildNotFound):
            system.ref("/child1")


async def test_permanent_abnormal(autojump_clock):
    """A permanent child is restarted after an abnormal exit."""
    plan = Plan("child1")
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(shutdown=1))
        first = await ref.ask(Who())
        ref.tell(Raise(DIED))
        await settle()
        assert sup.which_children()[0].state is ChildState.RUNNING
        assert await ref.ask(Who()) != first
        assert sup.count_children() == counts(1, 1, 0, 1)


async def test_transient_abnormal(autojump_clock):
    """A transient child is restarted after an abnormal exit."""
    plan = Plan("child1")
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(restart=Restart.TRANSIENT, shutdown=1))
        first = await ref.ask(Who())
        ref.tell(Raise(DIED))
        await settle()
        assert sup.which_children()[0].state is ChildState.RUNNING
        assert await ref.ask(Who()) != first
        assert sup.count_children() == counts(1, 1, 0, 1)


async def test_temporary_abnormal(autojump_clock):
    """A temporary child is not restarted after an abnormal exit either."""
    plan = Plan("child1")
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(restart=Restart.TEMPORARY, shutdown=1))
        ref.tell(Raise(DIED))
        await settle()
        assert ids(sup) == []
        assert sup.count_children() == counts(0, 0, 0, 0)
        assert len(plan.starts) == 1


async def test_temporary_bystander(autojump_clock):
    """A temporary child stopped as part of a one_for_all / rest_for_one restart is
    not restarted (its spec is dropped), so the supervisor does not hit its limit."""
    async with open_actor_system(
        [
            sup_spec("sup1", strategy=Strategy.ONE_FOR_ALL, intensity=2, period=300),
            sup_spec("sup2", strategy=Strategy.REST_FOR_ONE, intensity=2, period=300),
        ],
        intensity=10,
        period=300,
    ) as system:
        bystanders = []
        for path in ("/sup1", "/sup2"):
            sup = system.supervisor(path)
            child1, child2 = Plan("child1"), Plan("child2")
            bystanders.append(child2)
            ref = await sup.start_child(child1.spec(shutdown=0.1))
            await sup.start_child(child2.spec(restart=Restart.TEMPORARY, shutdown=0.1))
            ref.tell(Raise(Shutdown("normal")))
        await trio.sleep(0.35)
        for path in ("/sup1", "/sup2"):
            sup = system.supervisor(path)
            assert ids(sup) == ["child1"]
            assert sup.which_children()[0].state is ChildState.RUNNING
        assert exits_of(system, "/sup1") == exits_of(system, "/sup2") == []
        assert [len(p.starts) for p in bystanders] == [1, 1]


# -- restart strategies ---------------------------------------------------------------


async def test_multiple_restarts(autojump_clock):
    """Restarting many times, never more than ``intensity`` within ``period``, is fine."""
    plan = Plan("child1")
    async with open_actor_system(intensity=1, period=1) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(plan.spec(shutdown=BRUTAL_KILL))
        ref.tell(Raise(DIED))
        for _ in range(3):
            await trio.sleep(2.1)
            ref.tell(Raise(DIED))
        await settle()
        assert system.tree().find("/child1").restarts == 4
        await sup.terminate_child("child1")
        await sup.delete_child("child1")
        assert ids(sup) == []
    assert len(plan.starts) == 5


async def test_one_for_one(autojump_clock):
    """Only the failed child is restarted; the third restart within the period
    exceeds intensity 2 and the supervisor exits (its parent sees it)."""
    child1, child2 = plans("child1", "child2")
    async with open_actor_system([sup_spec(intensity=2, period=3600)], intensity=10, period=3600) as system:
        sup = system.supervisor("/sup")
        ref1 = await sup.start_child(child1.spec(shutdown=1))
        ref2 = await sup.start_child(child2.spec(shutdown=1))
        before = await ref2.ask(Who())
        ref1.tell(Raise(DIED))
        await settle()
        assert ids(sup) == ["child1", "child2"]
        assert await ref2.ask(Who()) == before
        assert sup.count_children() == counts(2, 2, 0, 2)
        ref2.tell(Raise(DIED))
        await settle()
        assert exits_of(system, "/sup") == []
        ref1.tell(Raise(DIED))
        await settle()
        (reason,) = exits_of(system, "/sup")
        assert "IntensityExceeded" in reason
        assert [e.path for e in system.history() if e.kind is EventKind.INTENSITY_EXCEEDED] == ["/sup/child1"]


async def test_one_for_one_escalation(autojump_clock):
    """A child whose restarts keep failing exhausts intensity 4: the supervisor
    stops its other child and exits."""
    child1, child2 = plans("child1", "child2")
    async with open_actor_system([sup_spec(intensity=4, period=3600)], intensity=10, period=3600) as system:
        sup = system.supervisor("/sup")
        ref1 = await sup.start_child(child1.spec(shutdown=1))
        await sup.start_child(child2.spec(shutdown=1))
        child1.fail_start = True
        ref1.tell(Raise(DIED))
        await settle()
        (reason,) = exits_of(system, "/sup")
        assert "IntensityExceeded" in reason
        assert child1.journal.count(("start_failed", "child1")) == 4
        assert child2.journal[-1] == ("stop", "child2")
        assert trio.current_time() == 0


async def test_one_for_all(autojump_clock):
    """Every child is stopped and restarted; the third restart exits the supervisor."""
    child1, child2 = plans("child1", "child2")
    async with open_actor_system(
        [sup_spec(strategy=Strategy.ONE_FOR_ALL, intensity=2, period=3600)], intensity=10, period=3600
    ) as system:
        sup = system.supervisor("/sup")
        ref1 = await sup.start_child(child1.spec(shutdown=1))
        ref2 = await sup.start_child(child2.spec(shutdown=1))
        old = {await ref1.ask(Who()), await ref2.ask(Who())}
        ref1.tell(Raise(DIED))
        await settle()
        assert ("stop", "child2") in child2.journal
        assert ids(sup) == ["child1", "child2"]
        assert not old & {await ref1.ask(Who()), await ref2.ask(Who())}
        assert sup.count_children() == counts(2, 2, 0, 2)
        ref1.tell(Raise(DIED))
        await settle()
        ref2.tell(Raise(DIED))
        await settle()
        (reason,) = exits_of(system, "/sup")
        assert "IntensityExceeded" in reason


async def test_rest_for_one(autojump_clock):
    """The failed child and those started after it are restarted; earlier ones keep running."""
    child1, child2, child3 = plans("child1", "child2", "child3")
    async with open_actor_system(
        [sup_spec(strategy=Strategy.REST_FOR_ONE, intensity=2, period=3600)], intensity=10, period=3600
    ) as system:
        sup = system.supervisor("/sup")
        refs = [await sup.start_child(p.spec(shutdown=1)) for p in (child1, child2, child3)]
        assert sup.count_children() == counts(3, 3, 0, 3)
        old = [await r.ask(Who()) for r in refs]
        refs[1].tell(Raise(DIED))
        await settle()
        new = [await r.ask(Who()) for r in refs]
        assert new[0] == old[0] and new[1] != old[1] and new[2] != old[2]
        assert ("stop", "child3") in child3.journal
        assert ids(sup) == ["child1", "child2", "child3"]
        assert sup.count_children() == counts(3, 3, 0, 3)
        refs[2].tell(Raise(DIED))
        await settle()
        assert await refs[1].ask(Who()) == new[1]
        refs[1].tell(Raise(DIED))
        await settle()
        (reason,) = exits_of(system, "/sup")
        assert "IntensityExceeded" in reason


async def test_order_of_children(autojump_clock):
    """Children start in spec order and stop in reverse; a one_for_all restart
    stops the survivors in reverse and starts everyone in order."""
    journal: list = []
    a, b, c = plans("a", "b", "c", journal=journal)
    async with open_actor_system(
        [p.spec(shutdown=1) for p in (a, b, c)], strategy=Strategy.ONE_FOR_ALL, intensity=5, period=60
    ) as system:
        assert journal == [("start", "a"), ("start", "b"), ("start", "c")]
        journal.clear()
        system.ref("/a").tell(Raise(DIED))
        await settle()
        assert journal == [
            ("stop", "a"),
            ("stop", "c"),
            ("stop", "b"),
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
        ]
        journal.clear()
    assert journal == [("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_tree(autojump_clock):
    """Nested supervisors: a worker failure is handled by its own supervisor; a
    sub-supervisor that exceeds its intensity is an ordinary child failure of its
    parent (one_for_all here), which restarts both sub-supervisors from their specs
    (dynamic children are not restarted)."""
    child1, child2, child3, child4 = plans("child1", "child2", "child3", "child4")
    supchild1 = sup_spec(
        "supchild1", [child1.spec(shutdown=1), child2.spec(shutdown=1)], intensity=4, period=3600
    )
    supchild2 = sup_spec("supchild2", intensity=4, period=3600)
    async with open_actor_system(
        [sup_spec("top", strategy=Strategy.ONE_FOR_ALL, intensity=4, period=3600)], intensity=10, period=3600
    ) as system:
        top = system.supervisor("/top")
        await top.start_child(supchild1)
        await top.start_child(supchild2)
        assert top.count_children() == counts(2, 2, 2, 0)
        sup1, sup2 = system.supervisor("/top/supchild1"), system.supervisor("/top/supchild2")
        assert ids(sup1) == ["child1", "child2"]
        assert sup1.count_children() == counts(2, 2, 0, 2)
        assert sup2.count_children() == counts(0, 0, 0, 0)
        ref3 = await sup2.start_child(child3.spec(shutdown=1))
        ref4 = await sup2.start_child(child4.spec(shutdown=1))
        assert sup2.count_children() == counts(2, 2, 0, 2)
        workers1 = [await system.ref(f"/top/supchild1/{i}").ask(Who()) for i in ("child1", "child2")]
        serial3, serial4 = await ref3.ask(Who()), await ref4.ask(Who())

        ref4.tell(Raise(DIED))
        await settle()
        assert [await system.ref(f"/top/supchild1/{i}").ask(Who()) for i in ("child1", "child2")] == workers1
        assert await ref3.ask(Who()) == serial3
        assert await ref4.ask(Who()) != serial4
        assert sup2.count_children() == counts(2, 2, 0, 2)

        child3.fail_start = True
        ref3.tell(Raise(DIED))
        await trio.sleep(1)
        (reason,) = exits_of(system, "/top/supchild2")
        assert "IntensityExceeded" in reason
        assert exits_of(system, "/top") == []
        assert top.count_children() == counts(2, 2, 2, 0)
        new1, new2 = system.supervisor("/top/supchild1"), system.supervisor("/top/supchild2")
        assert ids(new1) == ["child1", "child2"]
        assert new1.count_children() == counts(2, 2, 0, 2)
        assert [await system.ref(f"/top/supchild1/{i}").ask(Who()) for i in ("child1", "child2")] != workers1
        assert ids(new2) == []
        assert new2.count_children() == counts(0, 0, 0, 0)


# -- dynamic children administration --------------------------------------------------


async def test_child_adm(autojump_clock):
    """start/terminate/restart/delete and every OTP error outcome."""
    plan = Plan("child1")
    spec = plan.spec(shutdown=1)
    async with open_actor_system([spec], intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        assert ids(sup) == ["child1"]
        assert sup.count_children() == counts(1, 1, 0, 1)

        with pytest.raises(AlreadyStarted):
            await sup.start_child(spec)

        with pytest.raises(ChildNotFound):
            await sup.terminate_child("hej")
        with pytest.raises(ChildNotFound):
            system.supervisor("/foo")
        with pytest.raises(ChildNotFound):
            system.supervisor("/child1")  # a worker, not a supervisor
        await sup.terminate_child("child1")
        assert plan.journal[-1] == ("stop", "child1")
        assert plan.stop_reasons[-1].kind is ExitKind.NORMAL
        assert sup.which_children()[0].state is ChildState.STOPPED
        assert sup.count_children() == counts(1, 0, 0, 1)
        await sup.terminate_child("child1")  # like OTP: terminating a stopped child succeeds

        with pytest.raises(AlreadyPresent):
            await sup.start_child(spec)

        ref = await sup.restart_child("child1")
        assert await ref.ask(Who()) is not None
        assert sup.which_children()[0].state is ChildState.RUNNING
        assert sup.count_children() == counts(1, 1, 0, 1)
        with pytest.raises(ChildRunning):
            await sup.restart_child("child1")
        with pytest.raises(ChildNotFound):
            await sup.restart_child("child2")

        with pytest.raises(ChildRunning):
            await sup.delete_child("child1")
        with pytest.raises(ChildNotFound):
            await sup.delete_child("hej")
        await sup.terminate_child("child1")
        await sup.delete_child("child1")
        with pytest.raises(ChildNotFound):
            await sup.restart_child("child1")
        assert ids(sup) == []
        assert sup.count_children() == counts(0, 0, 0, 0)
        with pytest.raises(ChildNotFound):
            system.ref("/child1")

        ref = await sup.start_child(spec)
        assert ids(sup) == ["child1"]
        assert sup.count_children() == counts(1, 1, 0, 1)

        # A child waiting in backoff is "restarting".
        flappy = Plan("flappy")
        flappy_spec = flappy.spec(shutdown=1, backoff=Backoff(min=10, max=10, jitter=Jitter.NONE))
        flappy_ref = await sup.start_child(flappy_spec)
        flappy_ref.tell(Raise(DIED))
        await settle()
        assert dict((i.id, i.state) for i in sup.which_children())["flappy"] is ChildState.BACKOFF
        with pytest.raises(ChildRestarting):
            await sup.restart_child("flappy")
        with pytest.raises(ChildRestarting):
            await sup.delete_child("flappy")
        with pytest.raises(AlreadyPresent):
            await sup.start_child(flappy_spec)
        assert sup.count_children() == counts(2, 1, 0, 2)
        await sup.terminate_child("flappy")  # ends its retry loop
        await trio.sleep(20)
        assert dict((i.id, i.state) for i in sup.which_children())["flappy"] is ChildState.STOPPED
        assert len(flappy.starts) == 1

    for error in (AlreadyStarted, AlreadyPresent, ChildNotFound, ChildRunning, ChildRestarting):
        assert issubclass(error, ChildError) and issubclass(error, LookupError)


async def test_sup_start_child_returns_error(autojump_clock):
    """A start_child whose start fails (raises or times out) raises StartFailed and
    leaves no trace: not in which_children, no path, the id is free again."""
    plan = Plan("child1", fail_start=True)
    slow = Plan("slow", start_delay=10)
    async with open_actor_system(intensity=2, period=3600) as system:
        sup = system.supervisor("/")
        with pytest.raises(StartFailed) as failed:
            await sup.start_child(plan.spec(shutdown=1))
        assert failed.value.child_id == "child1"
        assert isinstance(failed.value.cause, RuntimeError)
        assert ids(sup) == []
        assert sup.count_children() == counts(0, 0, 0, 0)
        with pytest.raises(ChildNotFound):
            system.ref("/child1")

        with pytest.raises(StartFailed, match="within 2"):
            await sup.start_child(slow.spec(start_timeout=2))
        assert trio.current_time() == 2
        assert ids(sup) == []

        plan.fail_start = False
        ref = await sup.start_child(plan.spec(shutdown=1))
        assert await ref.ask(Who()) is not None
        assert ids(sup) == ["child1"]
    kinds = [(e.kind, e.path) for e in system.history() if e.path != "/"]
    assert kinds[:3] == [
        (EventKind.START_FAILED, "/child1"),
        (EventKind.START_FAILED, "/slow"),
        (EventKind.STARTED, "/child1"),
    ]


async def test_sup_start_fail(autojump_clock):
    """A static child failing to start stops the already-started siblings in
    reverse order, and open_actor_system raises StartFailed."""
    journal: list = []
    a, b, c = plans("a", "b", "c", journal=journal)
    c.fail_start = True
    with pytest.raises(StartFailed) as failed:
        async with open_actor_system([p.spec(shutdown=1) for p in (a, b, c)]):
            pytest.fail("the system must not open")
    assert failed.value.child_id == "c"
    assert journal == [("start", "a"), ("start", "b"), ("start_failed", "c"), ("stop", "b"), ("stop", "a")]


# -- shutdown ---------------------------------------------------------------------------


async def test_faulty_application_shutdown(autojump_clock):
    """A child whose on_stop raises, or hangs, does not block shutdown beyond its
    grace; the error does not escape (OTP: a faulty application still shuts down)."""
    raises, hangs, fine = plans("raises", "hangs", "fine")
    raises.stop_raises = True
    hangs.stop_delay = math.inf
    async with open_actor_system([fine.spec(shutdown=1), raises.spec(shutdown=1), hangs.spec(shutdown=3)]):
        started = trio.current_time()
    assert trio.current_time() - started == 3
    assert fine.journal == [
        ("start", "fine"),
        ("start", "raises"),
        ("start", "hangs"),
        ("stop", "hangs"),
        ("stop", "raises"),
        ("stop", "fine"),
    ]


async def test_sup_stop_timeout(autojump_clock):
    """A child busy past its grace is cancelled when the grace runs out (OTP: killed);
    a well-behaved sibling stops normally. Elapsed time is exactly the grace."""
    child1, child2 = plans("child1", "child2")
    async with open_actor_system([child1.spec(shutdown=1), child2.spec(shutdown=1)]) as system:
        system.ref("/child2").tell(Sleep(200000))
        await settle()
        started = trio.current_time()
    assert trio.current_time() - started == 1
    assert [r.kind for r in child1.stop_reasons] == [ExitKind.NORMAL]
    assert child2.stop_reasons == []  # killed: on_stop never ran


async def test_sup_stop_brutal_kill(autojump_clock):
    """BRUTAL_KILL cancels at once: no on_stop, no waiting."""
    child1, child2 = plans("child1", "child2")
    child2.stop_delay = 5
    async with open_actor_system([child1.spec(shutdown=1), child2.spec(shutdown=BRUTAL_KILL)]):
        started = trio.current_time()
    assert trio.current_time() == started
    assert [r.kind for r in child1.stop_reasons] == [ExitKind.NORMAL]
    assert child2.stop_reasons == []


async def test_sup_stop_timeout_dynamic(autojump_clock):
    """Dynamic children stop concurrently: the shutdown takes the longest grace,
    not the sum; the hung one is cancelled at its grace."""
    quick, slower, hung = plans("quick", "slower", "hung")
    quick.stop_delay, slower.stop_delay, hung.stop_delay = 1, 2, math.inf
    async with open_actor_system() as system:
        sup = system.supervisor("/")
        await sup.start_child(quick.spec(shutdown=5))
        await sup.start_child(slower.spec(shutdown=5))
        await sup.start_child(hung.spec(shutdown=3))
        started = trio.current_time()
    assert trio.current_time() - started == 3
    assert sorted(entry for entry in quick.journal if entry[0] == "stop") == [
        ("stop", "hung"),
        ("stop", "quick"),
        ("stop", "slower"),
    ]


async def test_sup_stop_race(autojump_clock):
    """A child that exits on its own while the supervisor is shutting down never
    hangs the shutdown and is not restarted."""
    racer, slow = plans("racer", "slow")
    racer.crash_after = 1  # crashes while "slow" is being stopped
    slow.stop_delay = 2
    async with open_actor_system([racer.spec(shutdown=10), slow.spec(shutdown=10)], intensity=5, period=60):
        await trio.sleep(0.5)
        started = trio.current_time()
    assert trio.current_time() - started == 2
    assert racer.starts == [0]
    assert ("stop", "racer") in racer.journal


# -- restart loops ------------------------------------------------------------------------


async def test_hanging_restart_loop(autojump_clock):
    """A child that fails on start while being restarted is "restarting" (waiting
    in backoff): start_child says already present, restart/delete say restarting;
    terminate_child ends the retry loop; shutting down during the loop never hangs."""
    plan = Plan("child1")
    spec = plan.spec(shutdown=BRUTAL_KILL, backoff=Backoff(min=1, max=1, jitter=Jitter.NONE))
    async with open_actor_system(intensity=8, period=10) as system:
        sup = system.supervisor("/")
        ref = await sup.start_child(spec)
        plan.fail_start = True
        ref.tell(Raise(DIED))
        await trio.sleep(2.5)  # restarts at 1 and 2 failed
        assert plan.journal.count(("start_failed", "child1")) == 2
        with pytest.raises(AlreadyPresent):
            await sup.start_child(spec)
        with pytest.raises(ChildRestarting):
            await sup.restart_child("child1")
        with pytest.raises(ChildRestarting):
            await sup.delete_child("child1")
        assert [(i.id, i.state) for i in sup.which_children()] == [("child1", ChildState.BACKOFF)]
        assert sup.count_children() == counts(1, 0, 0, 1)

        await sup.terminate_child("child1")
        assert [(i.id, i.state) for i in sup.which_children()] == [("child1", ChildState.STOPPED)]
        await trio.sleep(5)
        assert plan.journal.count(("start_failed", "child1")) == 2

        plan.fail_start = False
        ref = await sup.restart_child("child1")
        plan.fail_start = True
        ref.tell(Raise(DIED))
        await trio.sleep(1.5)
        assert sup.which_children()[0].state is ChildState.BACKOFF
        started = trio.current_time()
    assert trio.current_time() == started
    assert exits_of(system, "/") == []


async def test_hanging_restart_loop_ends_at_intensity(autojump_clock):
    """Without backoff, a child failing on every restart ends its supervisor after
    exactly ``intensity`` restarts, at once, and the parent restarts the supervisor."""
    plan = Plan("child1")
    async with open_actor_system([sup_spec(intensity=8, period=10)], intensity=3, period=10) as system:
        sup = system.supervisor("/sup")
        ref = await sup.start_child(plan.spec(shutdown=BRUTAL_KILL))
        plan.fail_start = True
        ref.tell(Raise(DIED))
        await settle()
        assert trio.current_time() == 0
        assert plan.journal.count(("start_failed", "child1")) == 8
        (reason,) = exits_of(system, "/sup")
        assert "IntensityExceeded" in reason
        assert system.supervisor("/sup").count_children() == counts(0, 0, 0, 0)


async def test_one_for_all_other_child_fails_restart(autojump_clock):
    """During a one_for_all restart a later child fails to start: the already
    restarted ones are stopped again and the whole group is restarted."""
    journal: list = []
    child1, child2 = plans("child1", "child2", journal=journal)
    sup = sup_spec(
        "sup", [child1.spec(shutdown=1), child2.spec(shutdown=1)], strategy=Strategy.ONE_FOR_ALL, intensity=3, period=3600
    )
    async with open_actor_system([sup], intensity=10, period=3600) as system:
        journal.clear()
        child2.fail_starts = 1
        system.ref("/sup/child1").tell(Raise(DIED))
        await settle()
        assert journal == [
            ("stop", "child1"),
            ("stop", "child2"),
            ("start", "child1"),
            ("start_failed", "child2"),
            ("stop", "child1"),
            ("start", "child1"),
            ("start", "child2"),
        ]
        assert [i.state for i in system.supervisor("/sup").which_children()] == [ChildState.RUNNING] * 2
        assert exits_of(system, "/sup") == []


async def test_rest_for_one_other_child_fails_restart(autojump_clock):
    """During a rest_for_one restart a later child fails to start: only it (and
    those after it) are retried; the earlier, already restarted child is left alone."""
    journal: list = []
    child1, child2 = plans("child1", "child2", journal=journal)
    sup = sup_spec(
        "sup", [child1.spec(shutdown=1), child2.spec(shutdown=1)], strategy=Strategy.REST_FOR_ONE, intensity=3, period=3600
    )
    async with open_actor_system([sup], intensity=10, period=3600) as system:
        journal.clear()
        child2.fail_starts = 1
        system.ref("/sup/child1").tell(Raise(DIED))
        await settle()
        assert journal == [
            ("stop", "child1"),
            ("stop", "child2"),
            ("start", "child1"),
            ("start_failed", "child2"),
            ("start", "child2"),
        ]
        assert [i.state for i in system.supervisor("/sup").which_children()] == [ChildState.RUNNING] * 2


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
@pytest.mark.parametrize("how", ["normal", "abnormal", "supervisor"])
async def test_do_not_save_child_specs_for_temporary_children(autojump_clock, strategy, how):
    """Permanent and transient specs are kept (restarted, or already present);
    a temporary child's spec is dropped however it ends, so it can be started again."""

    async def end(sup, ref, child_id: str) -> None:
        match how:
            case "normal":
                ref.tell(Raise(Shutdown("normal")))
                await settle()
            case "abnormal":
                ref.tell(Raise(DIED))
                await settle()
            case "supervisor":
                await sup.terminate_child(child_id)

    async with open_actor_system([sup_spec(strategy=strategy, intensity=10, period=3600)], intensity=10) as system:
        sup = system.supervisor("/sup")
        for restart in (Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY):
            spec = Plan(restart.value).spec(restart=restart, shutdown=1)
            ref = await sup.start_child(spec)
            await end(sup, ref, spec.id)
            kept_stopped = how == "supervisor" or (restart is Restart.TRANSIENT and how == "normal")
            if restart is Restart.TEMPORARY:
                assert spec.id not in ids(sup)
                await sup.start_child(spec)
            elif kept_stopped:
                with pytest.raises(AlreadyPresent):
                    await sup.start_child(spec)
                await sup.restart_child(spec.id)
            else:
                with pytest.raises(AlreadyStarted):
                    await sup.start_child(spec)
        assert [i.state for i in sup.which_children()] == [ChildState.RUNNING] * 3


async def test_sup_flags(autojump_clock):
    """Bad supervisor flags or child specs stop the start with a clear error; nothing starts."""
    plan = Plan("a")
    with pytest.raises(SpecError, match="Supervisor.intensity"):
        async with open_actor_system([plan.spec()], intensity=-1):
            pytest.fail("the system must not open")
    with pytest.raises(SpecError, match="unique"):
        async with open_actor_system([plan.spec(), plan.spec()]):
            pytest.fail("the system must not open")
    assert plan.starts == []
