"""ActorRef: tell / send / ask, their errors, and refs across restarts and stops."""

from __future__ import annotations

import pytest
import trio

from supervisor import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorStopped,
    AskTimeout,
    Backoff,
    ChildSpec,
    Escalate,
    ExitKind,
    Jitter,
    MailboxFull,
    Restart,
    RetryAfter,
    Shutdown,
    StopForGood,
    Supervisor,
    SupervisorError,
    open_actor_system,
)

from ._kit import Echo, Plan, Raise, Sleep, Who, settle


async def test_tell_send_and_ask_reach_the_actor_in_order(autojump_clock):
    plan = Plan("echo")
    async with open_actor_system([plan.spec()]) as system:
        ref = system.ref("/echo")
        assert isinstance(ref, ActorRef) and ref.path == "/echo"
        ref.tell(Echo(1))
        await ref.send(Echo(2))
        assert await ref.ask(Echo(3)) == 3
        assert system.tree().find("/echo").processed == 3
    assert plan.received == [Echo(1), Echo(2), Echo(3)]


async def test_tell_raises_mailbox_full(autojump_clock):
    """The mailbox holds ``mailbox`` messages besides the one in hand; tell never waits."""
    async with open_actor_system([Plan("busy").spec(mailbox=2)]) as system:
        ref = system.ref("/busy")
        ref.tell(Sleep(10))
        await settle()  # the actor took it and sleeps
        ref.tell(Echo(1))
        ref.tell(Echo(2))
        with pytest.raises(MailboxFull) as full:
            ref.tell(Echo(3))
        assert isinstance(full.value, BufferError)
        assert "/busy" in str(full.value)
        assert system.tree().find("/busy").mailbox_depth == 2
        assert trio.current_time() == 0


async def test_send_waits_for_room(autojump_clock):
    """send blocks while the mailbox is full and returns as soon as there is room."""
    async with open_actor_system([Plan("busy").spec(mailbox=1)]) as system:
        ref = system.ref("/busy")
        ref.tell(Sleep(5))
        await settle()
        ref.tell(Echo(1))
        await ref.send(Echo(2))  # room appears when the actor takes Echo(1), after its sleep
        assert trio.current_time() == 5
        assert await ref.ask(Who()) is not None


async def test_ask_times_out(autojump_clock):
    """AskTimeout after exactly ``timeout``; the message is still handled later."""
    async with open_actor_system([Plan("slow").spec()]) as system:
        ref = system.ref("/slow")
        with pytest.raises(AskTimeout) as timeout:
            await ref.ask(Sleep(10), timeout=2)
        assert isinstance(timeout.value, TimeoutError)
        assert trio.current_time() == 2
        assert await ref.ask(Echo("after"), timeout=60) == "after"
        assert trio.current_time() == 10


async def test_ask_timeout_default_is_five_seconds(autojump_clock):
    async with open_actor_system([Plan("slow").spec()]) as system:
        with pytest.raises(AskTimeout):
            await system.ref("/slow").ask(Sleep(60))
        assert trio.current_time() == 5


async def test_ask_failed_carries_the_original_error(autojump_clock):
    """The handler's exception reaches the asker as ActorFailed(.cause); the actor
    crashed and was restarted (let it crash)."""
    async with open_actor_system([Plan("fragile").spec()]) as system:
        ref = system.ref("/fragile")
        first = await ref.ask(Who())
        boom = ValueError("boom")
        with pytest.raises(ActorFailed) as failed:
            await ref.ask(Raise(boom))
        assert failed.value.cause is boom
        assert failed.value.path == "/fragile"
        assert isinstance(failed.value, RuntimeError)
        await settle()
        assert await ref.ask(Who()) != first
        snapshot = system.tree().find("/fragile")
        assert (snapshot.restarts, snapshot.last_failure.type, snapshot.last_failure.message) == (1, "ValueError", "boom")


async def test_actor_stopped_when_not_running(autojump_clock):
    """tell, send and ask raise ActorStopped while the child is stopped or in backoff."""
    async with open_actor_system(
        [
            Plan("done").spec(restart=Restart.TRANSIENT),
            Plan("waiting").spec(backoff=Backoff(min=10, max=10, jitter=Jitter.NONE)),
        ]
    ) as system:
        for path in ("/done", "/waiting"):
            ref = system.ref(path)
            ref.tell(Raise(Shutdown() if path == "/done" else RuntimeError("down")))
            await settle()
            with pytest.raises(ActorStopped) as stopped:
                ref.tell(Echo(1))
            assert isinstance(stopped.value, LookupError)
            with pytest.raises(ActorStopped):
                await ref.send(Echo(1))
            with pytest.raises(ActorStopped):
                await ref.ask(Echo(1))
        await trio.sleep(10)
        await settle()
        assert await system.ref("/waiting").ask(Echo("back")) == "back"


async def test_asks_queued_at_stop_get_actor_stopped(autojump_clock):
    """When the actor stops, the ask in hand is cancelled at the end of the grace and
    every ask still queued fails with ActorStopped: no asker hangs."""
    async with open_actor_system([Plan("busy").spec(shutdown=1)]) as system:
        sup = system.supervisor("/")
        ref = system.ref("/busy")
        outcomes: dict[str, object] = {}

        async def ask(name: str, message) -> None:
            try:
                outcomes[name] = await ref.ask(message, timeout=100)
            except ActorStopped as stopped:
                outcomes[name] = stopped

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "in hand", Sleep(100))
            await settle()
            for name in ("queued 1", "queued 2"):
                nursery.start_soon(ask, name, Echo(name))
            await settle()
            await sup.terminate_child("busy")
            assert trio.current_time() == 1
        assert set(outcomes) == {"in hand", "queued 1", "queued 2"}
        assert all(isinstance(outcome, ActorStopped) for outcome in outcomes.values())


async def test_message_in_hand_finishes_within_the_grace(autojump_clock):
    """A graceful stop lets the handler in progress reply, then stops taking messages."""
    async with open_actor_system([Plan("busy").spec(shutdown=5)]) as system:
        ref = system.ref("/busy")
        results: list = []

        async def ask(message) -> None:
            try:
                results.append(await ref.ask(message))
            except ActorStopped:
                results.append("stopped")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, Sleep(2))
            await settle()
            nursery.start_soon(ask, Echo("late"))
            await settle()
            await system.supervisor("/").terminate_child("busy")
        assert results == ["slept", "stopped"]
        assert trio.current_time() == 2


async def test_refs_survive_restarts(autojump_clock):
    """A ref names the child slot: it reaches every later incarnation."""
    async with open_actor_system([Plan("phoenix").spec()], intensity=5, period=10) as system:
        ref = system.ref("/phoenix")
        serials = {await ref.ask(Who())}
        for _ in range(3):
            ref.tell(Raise(RuntimeError("again")))
            await settle()
            serials.add(await ref.ask(Who()))
        assert len(serials) == 4
        assert ref.path == "/phoenix"
        assert system.tree().find("/phoenix").restarts == 3


async def test_actor_task_failure_fails_the_actor(autojump_clock):
    """A ctx.nursery task that raises fails the actor; the failure is the task's error."""
    plan = Plan("worker", crash_after=1)
    async with open_actor_system([plan.spec()], intensity=1, period=1) as system:
        await trio.sleep(1.5)
        assert plan.starts == [0, 1]
        assert [(r.kind, r.error_type, r.message) for r in plan.stop_reasons] == [
            (ExitKind.ABNORMAL, "RuntimeError", "worker crashed")
        ]
        failure = system.tree().find("/worker").last_failure
        assert (failure.type, failure.at) == ("RuntimeError", 1)


async def test_on_stop_runs_when_the_handler_raises_while_tasks_run(autojump_clock):
    """An actor with background tasks still gets on_stop(reason) when a handler raises."""
    plan = Plan("worker", beats=1000)
    async with open_actor_system([plan.spec()]) as system:
        system.ref("/worker").tell(Raise(ValueError("bad")))
        await settle()
        assert [(r.kind, r.error_type) for r in plan.stop_reasons] == [(ExitKind.ABNORMAL, "ValueError")]
        assert len(plan.starts) == 2


async def test_context_names_the_actor(autojump_clock):
    seen: list = []

    class Me(Actor):
        async def on_start(self) -> None:
            seen.append((self.ctx.path, self.ctx.ref.path, self.ctx.system))

    async with open_actor_system([ChildSpec("me", Me)]) as system:
        assert seen == [("/me", "/me", system)]


@pytest.mark.parametrize(
    ("error", "kind", "error_type", "retry_after"),
    [
        (Shutdown("bye"), ExitKind.NORMAL, "Shutdown", 0.0),
        (ValueError("bad"), ExitKind.ABNORMAL, "ValueError", 0.0),
        (RetryAfter(3, "banned"), ExitKind.RETRY_AFTER, "RetryAfter", 3.0),
        (StopForGood("logged out"), ExitKind.STOP_FOR_GOOD, "StopForGood", 0.0),
        (Escalate("give up"), ExitKind.ESCALATE, "Escalate", 0.0),
    ],
)
async def test_on_stop_reason(autojump_clock, error, kind, error_type, retry_after):
    """on_stop receives the classified reason of the exit."""
    plan = Plan("child")
    sup = ChildSpec("sup", lambda: Supervisor([plan.spec(restart=Restart.TRANSIENT)], intensity=5, period=10))
    async with open_actor_system([sup], intensity=5, period=10) as system:
        system.ref("/sup/child").tell(Raise(error))
        await settle()
        (reason,) = plan.stop_reasons[:1]
        assert (reason.kind, reason.error_type, reason.retry_after) == (kind, error_type, retry_after)
        assert reason.message == str(error)


async def test_on_stop_reason_when_stopped_by_the_supervisor(autojump_clock):
    plan = Plan("child")
    async with open_actor_system([plan.spec()]) as system:
        await system.supervisor("/").terminate_child("child")
    (reason,) = plan.stop_reasons
    assert reason.kind is ExitKind.NORMAL and not reason.is_failure
    assert reason.error_type == "Shutdown"


async def test_escalate_from_root_child_fails_the_system(autojump_clock):
    with pytest.raises(SupervisorError, match="Escalated"):
        async with open_actor_system([Plan("child").spec()]) as system:
            system.ref("/child").tell(Raise(Escalate("cannot cope")))
            await trio.sleep_forever()


async def test_callers_blocked_on_a_full_mailbox_are_released_when_it_stops(autojump_clock):
    """A send or ask waiting for room never hangs when the actor stops: the ask fails
    with ActorStopped; the send returns (its message dropped with the mailbox, like a
    tell just before the stop) or raises ActorStopped."""
    async with open_actor_system([Plan("busy").spec(mailbox=1, shutdown=1)]) as system:
        ref = system.ref("/busy")
        ref.tell(Sleep(100))
        await settle()
        ref.tell(Echo("fills the mailbox"))
        outcomes: dict[str, object] = {}

        async def blocked(name: str, call) -> None:
            try:
                outcomes[name] = await call
            except ActorStopped as stopped:
                outcomes[name] = stopped

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked, "send", ref.send(Echo("waits")))
            nursery.start_soon(blocked, "ask", ref.ask(Echo("waits too"), timeout=60))
            await settle()
            assert outcomes == {}
            await system.supervisor("/").terminate_child("busy")
        assert isinstance(outcomes["ask"], ActorStopped)
        assert outcomes["send"] is None or isinstance(outcomes["send"], ActorStopped)
        assert trio.current_time() == 1


async def test_refs_to_the_same_child_are_equal_across_restarts(autojump_clock):
    from supervisor import Actor, ChildSpec, open_actor_system

    class Idle(Actor):
        pass

    async with open_actor_system([ChildSpec("a", Idle), ChildSpec("b", Idle)]) as system:
        first = system.ref("/a")
        assert first == system.ref("/a") and hash(first) == hash(system.ref("/a"))
        assert first != system.ref("/b")
        assert len({first, system.ref("/a"), system.ref("/b")}) == 2


async def test_an_unexpected_message_is_ignored_by_a_supervisor(autojump_clock):
    from supervisor import Actor, ChildSpec, open_actor_system

    class Idle(Actor):
        pass

    async with open_actor_system([ChildSpec("a", Idle)]) as system:
        system.ref("/").tell("stray")
        await trio.sleep(1)
        assert system.tree().find("/a").state == "running"
        assert system.tree().restarts == 0 and system.tree().state == "running"


async def test_requests_scatter_to_several_actors_and_are_gathered_after(autojump_clock):
    """request sends without waiting for the answer: every actor works at once, so gathering
    three 5 s handlers takes 5 s, not 15; each reply answers its own request."""
    async with open_actor_system([Plan(name).spec() for name in ("a", "b", "c")]) as system:
        refs = [system.ref(f"/{name}") for name in ("a", "b", "c")]
        slow = [await ref.request(Sleep(5)) for ref in refs]
        echoes = [ref.request_nowait(Echo(ref.path)) for ref in refs]
        assert not any(reply.event.is_set() for reply in slow + echoes)  # nothing waited for so far
        assert [await reply.wait() for reply in slow] == ["slept"] * 3
        assert [await reply.wait() for reply in echoes] == ["/a", "/b", "/c"]
        assert trio.current_time() == 5


async def test_request_nowait_raises_mailbox_full(autojump_clock):
    async with open_actor_system([Plan("busy").spec(mailbox=1)]) as system:
        ref = system.ref("/busy")
        in_hand = ref.request_nowait(Sleep(10))
        await settle()  # the actor took it and sleeps
        queued = ref.request_nowait(Echo("queued"))
        with pytest.raises(MailboxFull):
            ref.request_nowait(Echo("no room"))
        assert await in_hand.wait() == "slept" and await queued.wait() == "queued"
        assert trio.current_time() == 10


async def test_request_waits_for_room_in_the_mailbox(autojump_clock):
    async with open_actor_system([Plan("busy").spec(mailbox=1)]) as system:
        ref = system.ref("/busy")
        ref.tell(Sleep(4))
        await settle()
        ref.tell(Echo("fills the mailbox"))
        reply = await ref.request(Echo("waited"))  # room appears once the sleep is over
        assert trio.current_time() == 4
        assert await reply.wait() == "waited"


async def test_request_to_a_stopped_child_raises_actor_stopped(autojump_clock):
    async with open_actor_system([Plan("done").spec(restart=Restart.TRANSIENT)]) as system:
        ref = system.ref("/done")
        ref.tell(Raise(Shutdown()))
        await settle()
        with pytest.raises(ActorStopped):
            ref.request_nowait(Echo(1))
        with pytest.raises(ActorStopped):
            await ref.request(Echo(1))


async def test_reply_wait_raises_actor_stopped_when_the_actor_stops_first(autojump_clock):
    """A request still queued when its actor stops is answered ActorStopped, not left hanging."""
    async with open_actor_system([Plan("busy").spec(shutdown=1)]) as system:
        ref = system.ref("/busy")
        ref.tell(Sleep(100))
        await settle()
        queued = ref.request_nowait(Echo("never handled"))
        await system.supervisor("/").terminate_child("busy")
        with pytest.raises(ActorStopped):
            await queued.wait()


async def test_reply_wait_raises_actor_failed_with_the_handlers_error(autojump_clock):
    async with open_actor_system([Plan("fragile").spec()]) as system:
        ref = system.ref("/fragile")
        boom = ValueError("boom")
        reply = await ref.request(Raise(boom))
        with pytest.raises(ActorFailed) as failed:
            await reply.wait()
        assert failed.value.cause is boom and failed.value.path == "/fragile"
        with pytest.raises(ActorFailed):
            reply.result()  # the reply keeps its outcome
