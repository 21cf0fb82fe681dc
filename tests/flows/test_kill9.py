"""kill -9 of the daemon (a real ``zapvisor run`` subprocess) in the middle of inbound and
outbound streams, then a restart, against the simulator in its default whatsmeow delivery (a
message is gone from WhatsApp once the driver's transport receipted it, before our code ran):
every message the daemon journaled is stored exactly once after the restart's replay; the
messages receipted but not yet journaled at the kill (the window that remains) are counted and
reported, never assumed away; every accepted send reaches WhatsApp at most once, in order, and is
recorded under the id WhatsApp gave it — or, if the kill caught it with WhatsApp's driver, is
``unknown`` (never sent again by itself); nothing stays queued.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import trio

from actors.store import JobStatus, PostgresBackend, Queue, SqliteBackend, open_store
from tests.fixtures.flows import contact, flow_env
from tests.fixtures.simulator import journaled_ids

SENDS = 40
INBOUND = 400
INBOUND_RATE = 150.0  # messages per second: the stream lasts ~2.7 s, the kill lands inside it
DAEMON = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['run']))"]
START_TIMEOUT = 60.0  # generous: a loaded 2-core machine imports and migrates slowly
# Receipted-but-not-journaled messages a kill can catch: the driver's reader sends the receipt of
# a ``messages`` frame, then writes the frame to the journal on trio's thread as soon as that send
# returns (well under a millisecond); at this rate a frame carries one or two messages. The bound
# only catches a window that grew far beyond that; the measured figure is reported.
WINDOW_BOUND = 10


def _backend(env: dict[str, str]):
    if env.get("ZAPVISOR_STORE__BACKEND") == "postgres":
        return PostgresBackend(env["ZAPVISOR_STORE__POSTGRES_DSN"])
    return SqliteBackend(Path(env["ZAPVISOR_NODE__DATA_DIR"]) / "zapvisor.sqlite3")


async def _start(env: dict[str, str], log: Path) -> trio.Process:
    with open(log, "ab") as out:
        return await trio.lowlevel.open_process(DAEMON, env={**os.environ, **env}, stdout=out, stderr=out)


async def test_kill9_mid_streams_loses_nothing_journaled_and_duplicates_nothing(
        tmp_path, simulator, simulator_control, backend_dsn, record_property):
    env = flow_env(tmp_path, simulator.url, backend_dsn, api__port="0", outbox__pacing_interval="0.05",
                   logging__level="warning")
    data = Path(env["ZAPVISOR_NODE__DATA_DIR"])
    account = await simulator_control.create_account("s1", paired=True)
    (data / "auth").mkdir(parents=True)
    (data / "auth" / "s1.json").write_text('{"creds": "%s"}' % account["creds"])
    async with open_store(_backend(env)) as store:
        await store.upsert_tenant("acme", "Acme")
        await store.upsert_session("s1", "acme", "desk")
        await store.set_session_status("s1", "connecting")  # was live: restored at boot
        items = [(await store.enqueue_outbox("acme", "s1", f"k{i}", contact(9), {"text": f"out {i}"})).item
                 for i in range(SENDS)]

        log = tmp_path / "daemon.log"
        daemon = await _start(env, log)
        try:
            with trio.move_on_after(START_TIMEOUT):
                while (await store.get_session("s1")).status != "connected":
                    await trio.sleep(0.05)
            status = await store.get_session("s1")
            assert status.status == "connected", (status, daemon.returncode, log.read_text()[-3000:])
            await simulator_control.traffic_start(rate=INBOUND_RATE, count=INBOUND, contacts=30, media_share=0.0,
                                                  group_share=0.0, sessions=["s1"], seed=5)
            with trio.fail_after(START_TIMEOUT):  # both streams under way
                while (await store.count_messages("s1") < INBOUND // 4
                       or len(await store.list_jobs(Queue.OUTBOX, JobStatus.DONE)) < 3):
                    await trio.sleep(0.01)
            daemon.kill()  # SIGKILL: no shutdown, no flush
            await daemon.wait()
            sent_before = len(await simulator_control.sent("s1"))
            stored_before = await store.count_messages("s1")
            assert 0 < sent_before < SENDS and stored_before < INBOUND + sent_before  # killed mid-streams
            journaled = set(journaled_ids(data / "journal", "s1"))
            stored_ids_before = await _inbound_ids(store)

            daemon = await _start(env, log)
            progress = previous = None
            with trio.move_on_after(START_TIMEOUT):
                while True:
                    done = await store.list_jobs(Queue.OUTBOX, JobStatus.DONE, limit=1000)
                    unknown = await store.list_jobs(Queue.OUTBOX, JobStatus.UNKNOWN, limit=1000)
                    stats = await simulator_control.stats()
                    progress = (len(done) + len(unknown), stats.traffic_running, stats.queued,
                                await store.count_messages("s1"), stats.messages_receipted,
                                (await store.get_session("s1")).status)
                    # Done when the sends are, every message was receipted, the journal is drained
                    # and the store's count held still for a poll (the window is measured below).
                    if (progress[:3] == (SENDS, False, 0) and progress[4] == INBOUND and progress == previous
                            and not journaled_ids(data / "journal", "s1")):
                        break
                    previous = progress
                    await trio.sleep(0.05)
            assert progress[:3] == (SENDS, False, 0), (progress, log.read_text()[-3000:])
            assert len(unknown) <= 1  # one send at a time per session: at most one caught mid-send
        finally:
            if daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                with trio.move_on_after(30):
                    await daemon.wait()
                if daemon.returncode is None:
                    daemon.kill()
        assert daemon.returncode == 0, log.read_text()[-3000:]

        stats = await simulator_control.stats()
        assert stats.traffic_generated == INBOUND and stats.queued == 0
        assert stats.messages_receipted == INBOUND  # whatsmeow delivery: all gone from WhatsApp at receipt
        inbound = await _inbound_list(store)
        assert len(inbound) == len(set(inbound))  # stored exactly once
        assert journaled | stored_ids_before <= set(inbound)  # 0 lost among everything journaled
        window = INBOUND - len(inbound)  # receipted, never journaled: lost with the killed process
        record_property("receipted_not_journaled", window)
        print(f"kill -9 window: {window} of {INBOUND} messages receipted but not journaled; "
              f"{len(journaled)} journaled and unstored at the kill, replayed")
        assert 0 <= window <= WINDOW_BOUND
        assert await store.count_messages("s1") == len(inbound) + len(done)
        sent = await simulator_control.sent("s1")
        order = {item.payload["text"]: n for n, item in enumerate(items)}
        positions = [order[entry["text"]] for entry in sent]
        assert positions == sorted(set(positions))  # at most once each, and in order
        by_text = {entry["text"]: entry["id"] for entry in sent}
        for job in done:  # every finished send: at WhatsApp, recorded under its id as our message
            assert job.wa_id == by_text[job.payload["text"]]
            assert (await store.get_message("s1", job.wa_id)).from_me


async def _inbound_list(store) -> list[str]:
    tickets = await store.list_tickets("acme", limit=1000)
    stored = [m for t in tickets for m in await store.list_messages(t.id, limit=1000)]
    return [m.wa_id for m in stored if not m.from_me]


async def _inbound_ids(store) -> set[str]:
    return set(await _inbound_list(store))
