"""Media jobs over a real node and simulator: stored file, retries, dead letters, size limit."""

from __future__ import annotations

import base64
from pathlib import Path

from actors.flows import Flows, GetJob, ListJobs, PauseQueue, ResumeQueue
from actors.node import StartSession, StopSession
from actors.sessions import SessionStatus
from actors.store import QUARANTINED, JobStatus
from supervisor import EventKind
from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision, wait_status

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def _send_media(control, data: bytes, *, kind="image", mimetype="image/png") -> dict:
    media = {"data": base64.b64encode(data).decode(), "kind": kind, "mimetype": mimetype, "file_name": None}
    return await control.call("send_message", session="s1", text="look", sender=contact(1), media=media)


async def _job_of(node, wa_id: str):
    async def job():
        message = await node.store.get_message("s1", wa_id)
        if message is None:
            return None
        jobs = [j for j in await Flows.media_ref(node.system).ask(ListJobs()) if j.message_id == message.id]
        return jobs[0] if jobs else None

    return await eventually(job)


async def _final(node, job_id: int, *statuses: JobStatus):
    async def final():
        job = await Flows.media_ref(node.system).ask(GetJob(job_id))
        return job if job.status in statuses else None

    return await eventually(final, timeout=30)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_download_is_stored_by_type_and_published(tmp_path, simulator, simulator_control, backend_dsn):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        sent = await _send_media(simulator_control, PNG, mimetype="application/octet-stream")
        job = await _final(node, (await _job_of(node, sent["id"])).id, JobStatus.DONE)
        message = await node.store.get_message("s1", sent["id"])
        assert message.media_type == "image" and message.media_path == job.path
        assert job.path.startswith("acme/") and job.path.endswith(f"/{message.id}.png")  # magic bytes win
        root = Path(settings.media.dir)
        assert _files(root) == [root / job.path]
        assert (root / job.path).read_bytes() == PNG

        async def published():  # the event follows the job's commit: it may come a moment later
            return [p for p in recorder.of("message.updated") if p["id"] == message.id]

        assert (await eventually(published))[-1]["media_path"] == job.path


async def test_transient_failure_then_success(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        node.flows.media.retry_base = 0.2
        media = Flows.media_ref(node.system)
        await media.ask(PauseQueue())
        sent = await _send_media(simulator_control, PNG)
        job = await _job_of(node, sent["id"])
        await node.manager.ask(StopSession("s1"))
        await media.ask(ResumeQueue())

        async def failed_once():
            current = await media.ask(GetJob(job.id))
            return current.attempts >= 1 and current.status is JobStatus.QUEUED and current.last_error

        await eventually(failed_once)
        await node.manager.ask(StartSession("s1"))
        await wait_status(node, "s1", SessionStatus.CONNECTED)
        done = await _final(node, job.id, JobStatus.DONE)
        assert done.attempts >= 2 and done.last_error is None
        assert [p.name for p in _files(Path(settings.media.dir))] == [done.path.rsplit("/", 1)[1]]


async def test_gone_from_whatsapp_is_a_dead_letter_at_once(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        media = Flows.media_ref(node.system)
        await media.ask(PauseQueue())
        sent = await _send_media(simulator_control, PNG)
        (simulator.state_dir / "media" / sent["media_ref"]).unlink()
        job = await _job_of(node, sent["id"])
        await media.ask(ResumeQueue())
        dead = await _final(node, job.id, JobStatus.DEAD)
        assert dead.attempts == 1 and "MediaNotFoundError" in dead.last_error
        assert [j.id for j in await media.ask(ListJobs(JobStatus.DEAD))] == [job.id]
        assert _files(Path(settings.media.dir)) == []


async def test_size_limit(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url, media__max_bytes=str(len(PNG) - 1))
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        sent = await _send_media(simulator_control, PNG)
        dead = await _final(node, (await _job_of(node, sent["id"])).id, JobStatus.DEAD)
        assert "exceeds media.max_bytes" in dead.last_error and dead.attempts == 1
        assert _files(Path(settings.media.dir)) == []



async def test_a_job_whose_content_breaks_its_actor_is_quarantined_and_others_download(
    tmp_path, simulator, simulator_control,
):
    """Item isolation (DESIGN §10): a job whose row breaks its actor (a corrupt timestamp the
    file's path is made from) is dead at once with its error, and the service goes on: the
    download queued beside it completes, nothing above the job restarts."""
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        media = Flows.media_ref(node.system)
        await media.ask(PauseQueue())
        poison_job = await _job_of(node, (await _send_media(simulator_control, PNG))["id"])
        sent = await _send_media(simulator_control, PNG)

        async def corrupt(tx):
            await tx.execute("UPDATE media_jobs SET created_at = 1e20 WHERE id = $1", poison_job.id)

        await node.store.backend.run_batch(corrupt)
        await media.ask(ResumeQueue())
        poison = await _final(node, poison_job.id, JobStatus.DEAD)
        assert poison.attempts == 1 and poison.last_error.startswith(f"{QUARANTINED}: OverflowError: ")
        good = await _final(node, (await _job_of(node, sent["id"])).id, JobStatus.DONE)
        assert (Path(settings.media.dir) / good.path).read_bytes() == PNG
        assert [e for e in node.system.history() if e.path in ("/services", "/services/media/dispatcher")
                and e.kind is not EventKind.STARTED] == []
