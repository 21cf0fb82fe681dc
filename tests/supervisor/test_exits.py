"""Classified exits acted on by supervisors: RetryAfter, StopForGood, Escalate."""

from __future__ import annotations

import pytest
import trio

from supervisor import (
    Actor,
    Backoff,
    ChildSpec,
    ChildState,
    CircuitBreaker,
    Escalate,
    EventKind,
    Jitter,
    Restart,
    RetryAfter,
    Shutdown,
    StopForGood,
    Supervisor,
    SupervisorError,
    open_actor_system,
)

from ._kit import Plan, Raise, Who, settle


@pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
async def test_retry_after_delays_the_restart(autojump_clock, restart):
    """The next start waits the RetryAfter seconds even though the backoff is 1 s."""
    plan = Plan("banned")
    spec = plan.spec(restart=restart, backoff=Backoff(min=1, max=1, jitter=Jitter.NONE))
    async with open_actor_system([spec]) as system:
        system.ref("/banned").tell(Raise(RetryAfter(45, "temporary ban")))
        await settle()
        snap = system.tree().find("/banned")
        assert (snap.state, snap.backoff_until) == ("backoff", 45)
        assert (snap.last_failure.type, snap.last_failure.kind, snap.last_failure.message) == (
            "RetryAfter",
            "retry_after",
            "temporary ban",
        )
        await trio.sleep(44.9)
        assert plan.starts == [0]
        await trio.sleep_until(45)
        await settle()
        assert plan.starts == [0, 45]
    (scheduled,) = [e for e in system.history() if e.kind is EventKind.RESTART_SCHEDULED]
    assert scheduled.delay == 45


async def test_longer_backoff_wins_over_a_short_retry_after(autojump_clock):
    plan = Plan("banned")
    async with open_actor_system([plan.spec(backoff=Backoff(min=10, max=10, jitter=Jitter.NONE))]) as system:
        system.ref("/banned").tell(Raise(RetryAfter(3)))
        await trio.sleep(10)
        await settle()
    assert plan.starts == [0, 10]


async def test_retry_after_does_not_trip_the_breaker(autojump_clock):
    """A ban is not the child's fault: RetryAfter exits are not breaker failures."""
    plan = Plan("banned")
    spec = plan.spec(breaker=CircuitBreaker(threshold=1, window=600, cooldown=300))
    async with open_actor_system([spec], intensity=10, period=600) as system:
        for _ in range(3):
            system.ref("/banned").tell(Raise(RetryAfter(5)))
            await trio.sleep(5)
            await settle()
        snap = system.tree().find("/banned")
        assert (snap.state, snap.breaker) == ("running", "closed")
    assert plan.starts == [0, 5, 10, 15]


@pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
async def test_stop_for_good_is_never_restarted_and_keeps_the_spec(autojump_clock, restart):
    plan = Plan("session")
    async with open_actor_system([plan.spec(restart=restart)], intensity=10, period=10) as system:
        sup = system.supervisor("/")
        system.ref("/session").tell(Raise(StopForGood("logged out")))
        await trio.sleep(3600)
        assert plan.starts == [0]
        assert [(i.id, i.state) for i in sup.which_children()] == [("session", ChildState.STOPPED)]
        snap = system.tree().find("/session")
        assert snap.state == "stopped"
        assert (snap.last_failure.type, snap.last_failure.kind, snap.last_failure.message, snap.last_failure.at) == (
            "StopForGood",
            "stop_for_good",
            "logged out",
            0,
        )
        ref = await sup.restart_child("session")  # the spec is still there
        assert await ref.ask(Who()) is not None
    kinds = [e.kind for e in system.history() if e.path == "/session"]
    assert kinds[:3] == [EventKind.STARTED, EventKind.EXITED, EventKind.STOPPED]


async def test_stop_for_good_of_a_temporary_child_drops_it(autojump_clock):
    async with open_actor_system([Plan("once").spec(restart=Restart.TEMPORARY)]) as system:
        system.ref("/once").tell(Raise(StopForGood("done")))
        await settle()
        assert system.supervisor("/").which_children() == ()


async def test_escalate_fails_the_supervisor_to_its_parent(autojump_clock):
    """Escalate skips intensity: the supervisor stops its other children and fails;
    its parent sees an ordinary child failure and restarts it."""
    journal: list = []
    worker, sibling = Plan("worker", journal), Plan("sibling", journal)
    sup = ChildSpec("sup", lambda: Supervisor([worker.spec(), sibling.spec()], intensity=100, period=10))
    async with open_actor_system([sup], intensity=5, period=10) as system:
        journal.clear()
        system.ref("/sup/worker").tell(Raise(Escalate("cannot cope")))
        await settle()
        assert journal == [
            ("stop", "worker"),
            ("stop", "sibling"),
            ("start", "worker"),
            ("start", "sibling"),
        ]
        snap = system.tree().find("/sup")
        assert (snap.state, snap.restarts, snap.last_failure.type) == ("running", 1, "Escalated")
        assert "cannot cope" in snap.last_failure.message


async def test_escalate_at_the_root_ends_the_system(autojump_clock):
    plan = Plan("worker")
    with pytest.raises(SupervisorError, match="Escalated"):
        async with open_actor_system([plan.spec()], intensity=100, period=10) as system:
            system.ref("/worker").tell(Raise(Escalate("cannot cope")))
            await trio.sleep_forever()
    assert plan.starts == [0]


class RefusesToRestart(Actor):
    """Its second start (the first restart) raises ``reason`` from on_start; others succeed."""

    def __init__(self, incarnations: list, reason: BaseException) -> None:
        self.incarnations, self.reason = incarnations, reason

    async def on_start(self) -> None:
        self.incarnations.append(trio.current_time())
        if len(self.incarnations) == 2:
            raise self.reason

    async def receive(self, message):
        match message:
            case Raise(error):
                raise error


async def test_retry_after_raised_by_a_restart_is_honoured(autojump_clock):
    """A restart whose on_start raises RetryAfter (a ban learnt while connecting)
    waits the ban out instead of retrying at once and burning intensity."""
    starts: list = []
    spec = ChildSpec("session", lambda: RefusesToRestart(starts, RetryAfter(45, "banned")))
    sup = ChildSpec("sup", lambda: Supervisor([spec], intensity=3, period=60))
    async with open_actor_system([sup], intensity=5, period=60) as system:
        system.ref("/sup/session").tell(Raise(RuntimeError("dropped")))
        await trio.sleep(50)
        assert starts == [0, 0, 45]
        assert [e for e in system.history() if e.kind is EventKind.EXITED and e.path == "/sup"] == []
        assert system.tree().find("/sup/session").last_failure.type == "RetryAfter"


async def test_stop_for_good_raised_by_a_restart_is_honoured(autojump_clock):
    """A restart whose on_start raises StopForGood (logged out) is not retried."""
    starts: list = []
    spec = ChildSpec("session", lambda: RefusesToRestart(starts, StopForGood("logged out")))
    sup = ChildSpec("sup", lambda: Supervisor([spec], intensity=3, period=60))
    async with open_actor_system([sup], intensity=5, period=60) as system:
        system.ref("/sup/session").tell(Raise(RuntimeError("dropped")))
        await trio.sleep(50)
        assert starts == [0, 0]
        snap = system.tree().find("/sup/session")
        assert (snap.state, snap.last_failure.type) == ("stopped", "StopForGood")
        assert [e for e in system.history() if e.kind is EventKind.EXITED and e.path == "/sup"] == []


async def test_escalate_raised_by_a_restart_fails_the_supervisor(autojump_clock):
    starts: list = []
    spec = ChildSpec("session", lambda: RefusesToRestart(starts, Escalate("node is unusable")))
    sup = ChildSpec("sup", lambda: Supervisor([Plan("other").spec(), spec], intensity=3, period=60))
    async with open_actor_system([sup], intensity=5, period=60) as system:
        system.ref("/sup/session").tell(Raise(RuntimeError("dropped")))
        await settle()
        (exited,) = [e for e in system.history() if e.kind is EventKind.EXITED and e.path == "/sup"]
        assert "Escalated" in exited.reason and "node is unusable" in exited.reason
        assert starts == [0, 0, 0]  # the parent restarted /sup, which started a fresh session
        assert system.tree().find("/sup").restarts == 1


async def test_shutdown_raised_by_a_transient_restart_keeps_it_stopped(autojump_clock):
    starts: list = []
    spec = ChildSpec("session", lambda: RefusesToRestart(starts, Shutdown("not needed")), restart=Restart.TRANSIENT)
    async with open_actor_system([spec], intensity=3, period=60) as system:
        system.ref("/session").tell(Raise(RuntimeError("dropped")))
        await trio.sleep(10)
        assert starts == [0, 0]
        assert system.tree().find("/session").state == "stopped"


async def test_a_failure_of_several_tasks_names_and_logs_every_inner_cause(autojump_clock, caplog):
    """Issue 13: an actor failed with an ExceptionGroup and only "(2 sub-exceptions)" was known.
    Its last failure now names each inner cause, and the log has the traceback of each."""
    group = ExceptionGroup("two tasks failed", [KeyError("gone"), ValueError("bad value")])
    async with open_actor_system([Plan("worker").spec()], intensity=100, period=10) as system:
        system.ref("/worker").tell(Raise(group))
        await settle()
        failure = system.tree().find("/worker").last_failure
    assert failure.type == "ExceptionGroup"
    assert failure.message == "two tasks failed [KeyError: 'gone'; ValueError: bad value]"
    (record,) = [r for r in caplog.records if r.name == "zapvisor.supervisor" and r.levelname == "ERROR"]
    assert record.getMessage().startswith("/worker failed: ExceptionGroup: two tasks failed")
    logged = caplog.text
    assert "KeyError: 'gone'" in logged and "ValueError: bad value" in logged and "Traceback" in logged
