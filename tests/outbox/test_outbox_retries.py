"""Retries, the failed dead letter and the queue administration of the outbox.

WhatsApp refusing a send is the one part no simulator fault produces, so a stand-in session
actor answers every send with RequestFailed; everything else (store, actor system, status
board, outbox service) is real.
"""

from __future__ import annotations

import attrs
import trio

from actors.flows import CleanJobs, GetJob, ListJobs, PauseQueue, QueueRefused, RemoveJob, ResumeQueue, RetryJob
from actors.outbox import OutboxDeps, OutboxService, Send
from actors.sessions import RequestFailed, SendText, SessionStatus, StatusBoard, tenant_spec, tenants_spec
from actors.store import DeliveryStatus, JobStatus, Queue, SqliteBackend, open_store
from supervisor import Actor, ChildSpec, RestartLimiter, open_actor_system

ATTEMPTS = 3


class RefusingSession(Actor):
    def __init__(self) -> None:
        self.sends: list[str] = []

    async def receive(self, message):
        assert isinstance(message, SendText)
        self.sends.append(message.message_id)
        return RequestFailed("RequestError", "send refused: not a WhatsApp user")


@attrs.define(eq=False)
class Events:
    seen: list[tuple[str, dict]] = attrs.field(factory=list)

    def emit(self, tenant_id, type, payload, *, ticket_id=None):
        self.seen.append((type, payload))


async def test_three_attempts_with_backoff_then_failed_and_admin(tmp_path):
    async with open_store(SqliteBackend(tmp_path / "z.db")) as store:
        await store.upsert_tenant("acme", "Acme")
        board, events, refusing = StatusBoard(debounce=0.05), Events(), RefusingSession()
        deps = OutboxDeps(store=store, board=board, attempts=ATTEMPTS, pacing_interval=0.0, pacing_jitter=0.0,
                          publisher=events, retry_base=0.05)
        async with open_actor_system([tenants_spec()]) as system:
            await system.supervisor("/tenants").start_child(tenant_spec("acme", RestartLimiter(rate=10, burst=10)))
            await system.supervisor("/tenants/acme/sessions").start_child(ChildSpec("s1", lambda: refusing))
            board.set("s1", "acme", SessionStatus.CONNECTED)
            outbox = await system.supervisor("/").start_child(ChildSpec("outbox", lambda: OutboxService(deps)))
            item = (await outbox.ask(Send("acme", "s1", "k1", "5511@s.whatsapp.net", "hello"))).item

            async def dead():
                job = await outbox.ask(GetJob(item.id))
                return job if job.status is JobStatus.DEAD else None

            def last_update():
                return [p["status"] for t, p in events.seen if t == "outbox.updated"][-1:]

            # the event follows the store's commit, so a reader can see the dead row a moment before it
            with trio.fail_after(20):
                while not await dead() or last_update() != ["dead"]:
                    await trio.sleep(0.02)
            job = await outbox.ask(GetJob(item.id))
            assert (job.attempts, job.delivery) == (ATTEMPTS, DeliveryStatus.FAILED)
            assert "not a WhatsApp user" in job.last_error
            assert refusing.sends == [item.message_id] * ATTEMPTS  # the same stable id every time
            assert [j.id for j in await outbox.ask(ListJobs(JobStatus.DEAD))] == [item.id]

            assert await outbox.ask(PauseQueue())
            retried = await outbox.ask(RetryJob(item.id))
            assert (retried.status, retried.attempts) == (JobStatus.QUEUED, 0)
            await trio.sleep(0.3)  # paused: kept, not handed out
            assert len(refusing.sends) == ATTEMPTS
            assert await outbox.ask(ResumeQueue())
            with trio.fail_after(20):
                while len(refusing.sends) < 2 * ATTEMPTS or not await dead():
                    await trio.sleep(0.02)
            assert await outbox.ask(CleanJobs(older_than=0)) == 0  # dead letters stay unless asked
            assert await outbox.ask(RemoveJob(item.id)) is True
            assert await outbox.ask(GetJob(item.id)) == QueueRefused("not_found", f"{Queue.OUTBOX} job {item.id} does not exist")
            assert (await outbox.ask(RemoveJob(item.id))).code == "not_found"
