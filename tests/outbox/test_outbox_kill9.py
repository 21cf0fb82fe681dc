"""kill -9 of the daemon (a real ``zapvisor run``) while WhatsApp has a send whose answer has not
come back: after a restart that row is ``unknown`` — not sent a second time — and every other
row is sent exactly once, each recorded with the id WhatsApp gave it.

The simulator is stalled (it reads and accepts the send but answers nothing) so the kill lands
deterministically between WhatsApp accepting the message and zapvisor learning its id.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import trio

from actors.store import JobStatus, Queue, open_store
from tests.fixtures.flows import contact, flow_env
from tests.flows.test_kill9 import START_TIMEOUT, _backend, _start

SENDS = 6


async def _jobs(store, status: JobStatus) -> list:
    return await store.list_jobs(Queue.OUTBOX, status, limit=1000)


async def test_kill9_mid_send_leaves_it_unknown_never_duplicated(tmp_path, simulator, simulator_control, backend_dsn):
    env = flow_env(tmp_path, simulator.url, backend_dsn, api__port="0", outbox__pacing_interval="0.3",
                   logging__level="warning")
    data = Path(env["ZAPVISOR_NODE__DATA_DIR"])
    account = await simulator_control.create_account("s1", paired=True)
    (data / "auth").mkdir(parents=True)
    (data / "auth" / "s1.json").write_text('{"creds": "%s"}' % account["creds"])
    async with open_store(_backend(env)) as store:
        await store.upsert_tenant("acme", "Acme")
        await store.upsert_session("s1", "acme", "desk")
        await store.set_session_status("s1", "connecting")  # was live: restored at boot
        texts = [f"out {i}" for i in range(SENDS)]
        items = [(await store.enqueue_outbox("acme", "s1", f"k{i}", contact(9), {"text": text})).item
                 for i, text in enumerate(texts)]

        log = tmp_path / "daemon.log"
        daemon = await _start(env, log)
        try:
            with trio.move_on_after(START_TIMEOUT):
                while not await _jobs(store, JobStatus.DONE):
                    await trio.sleep(0.05)
            assert await _jobs(store, JobStatus.DONE), (daemon.returncode, log.read_text()[-3000:])
            await simulator_control.stall("s1")  # WhatsApp still takes sends in, but answers nothing

            async def accepted_unanswered():
                sending = await _jobs(store, JobStatus.SENDING)
                logged = {entry["text"] for entry in await simulator_control.sent("s1")}
                return [job for job in sending if job.payload["text"] in logged]

            with trio.fail_after(START_TIMEOUT):
                while not (stuck := await accepted_unanswered()):
                    await trio.sleep(0.02)
            daemon.kill()  # SIGKILL with the send at WhatsApp and its answer not yet here
            await daemon.wait()
            [stuck] = stuck
            await simulator_control.reset_faults()

            daemon = await _start(env, log)
            settled = None
            with trio.move_on_after(START_TIMEOUT):
                while True:
                    done, unknown = await _jobs(store, JobStatus.DONE), await _jobs(store, JobStatus.UNKNOWN)
                    settled = (len(done), [job.id for job in unknown])
                    if len(done) + len(unknown) == SENDS:
                        break
                    await trio.sleep(0.05)
            assert settled == (SENDS - 1, [stuck.id]), (settled, log.read_text()[-3000:])
        finally:
            if daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                with trio.move_on_after(30):
                    await daemon.wait()
                if daemon.returncode is None:
                    daemon.kill()
        assert daemon.returncode == 0, log.read_text()[-3000:]

        unknown = await store.get_job(Queue.OUTBOX, stuck.id)
        assert unknown.wa_id is None and "zapvisor stopped" in unknown.last_error
        sent = await simulator_control.sent("s1")
        assert Counter(entry["text"] for entry in sent) == Counter(texts)  # each once: WhatsApp has all, none twice
        by_text = {entry["text"]: entry["id"] for entry in sent}
        for item in items:
            job = await store.get_job(Queue.OUTBOX, item.id)
            if job.id == stuck.id:
                continue
            assert job.wa_id == by_text[job.payload["text"]]  # recorded under WhatsApp's id
            assert (await store.get_message("s1", job.wa_id)).from_me
