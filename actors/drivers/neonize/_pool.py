"""The daemon side of the neonize workers: a pool of worker processes, supervised from trio.

An Erlang "port" for neonize: the daemon never imports neonize; each worker
process (``_worker``) hosts up to ``clients_per_worker`` clients and speaks the
framed protocol of ``_wire`` over its stdin/stdout pipes.

* **Placement.** :meth:`WorkerPool.attach` gives a session a client in a worker:
  the fullest live worker with room (fewest processes), else a new one.
* **Recycling.** Every connect counts against its worker (each one leaks a
  descriptor in neonize). At ``max_connect_cycles`` the worker *drains*: it
  gets no new clients; its sessions move to another worker at their next
  ``connect``; when its last client leaves it is told to exit (stdin closed).
* **Death.** A worker that dies (SIGKILL, a Go abort, a crash) fails exactly its
  own sessions: their pending calls raise :class:`WorkerDied`, and each
  placement's ``on_death`` callback fires so the driver can fail its session,
  which restarts at once on a fresh worker. Other workers are untouched.

* **Media spool.** Media bytes cross the pipes as files (``_wire``, *Media*):
  the pool owns a private directory for them (mode 0700) from :meth:`run`
  until it ends, and :meth:`media_file` names a fresh file in it.

Cancellation: cancelling :meth:`WorkerPool.run` closes every worker's stdin,
gives it ``stop_grace`` seconds to exit, then kills it; the spool directory
is removed.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import trio

from config import WorkersSettings

from .._errors import DriverError
from ._errors import PoolClosedError, WorkerDied, WorkerProtocolError, WorkerStartError
from ._wire import FrameDecoder, decode_error, encode_frame
from ._worker import CALL_THREADS

CALLS_PER_CLIENT: Final = 4
"""Calls one session may have blocked in Go at once (a send, a probe, a media
download, a mark-read: each can wait up to whatsmeow's 75 s IQ timeout). A worker
gets this many call threads per client, at least ``CALL_THREADS`` (threads start
only when needed)."""

log = logging.getLogger(__name__)

WORKER_MODULE: Final = "actors.drivers.neonize._worker"
READ_CHUNK: Final = 1 << 16

FrameHandler = Callable[["Placement", dict[str, Any]], Awaitable[None]]
DeathHandler = Callable[["Placement", WorkerDied], None]


def _positive_int(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"PoolSettings.{attribute.name} must be an integer >= 1, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"PoolSettings.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class PoolSettings:
    """How many clients a worker hosts, when it is recycled, and its start/stop bounds."""

    clients_per_worker: int = attrs.field(default=32, validator=_positive_int)
    """The default is ``workers.clients_per_worker``'s (see ``bench/neonize.py`` for the measurement)."""
    max_connect_cycles: int = attrs.field(default=50, validator=_positive_int)
    start_timeout: float = attrs.field(default=30.0, validator=_positive)
    """Until the worker's hello. Importing neonize takes ~0.6-0.8 s on an idle
    2-core machine; 30 s absorbs a machine busy starting hundreds of sessions."""
    stop_grace: float = attrs.field(default=5.0, validator=_positive)
    """Between closing a worker's stdin and killing it (it exits at once on EOF)."""
    log_level: str = "WARNING"
    python: str = sys.executable

    @classmethod
    def from_config(cls, workers: WorkersSettings, **overrides: Any) -> PoolSettings:
        """From the ``[workers]`` section of zapvisor's settings; ``overrides`` set the other fields."""
        return cls(
            clients_per_worker=workers.clients_per_worker,
            max_connect_cycles=workers.max_connect_cycles,
            **overrides,
        )


@attrs.frozen
class PoolStats:
    """A snapshot of the pool: live workers, hosted clients, and lifetime counters."""

    workers: int
    draining: int
    clients: int
    started: int
    retired: int
    died: int


@attrs.define(eq=False)
class _Call:
    done: trio.Event = attrs.field(factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


@attrs.define(eq=False)
class Worker:
    """One worker process as the daemon sees it (created by the pool only)."""

    process: trio.Process
    pid: int = 0
    import_s: float = 0.0
    connects: int = 0
    draining: bool = False
    dead: WorkerDied | None = None
    placements: dict[str, Placement] = attrs.field(factory=dict)
    _pending: dict[int, _Call] = attrs.field(factory=dict)
    _ids: itertools.count = attrs.field(factory=itertools.count)
    send_lock: trio.Lock = attrs.field(factory=trio.Lock)  # frames are written whole, one at a time
    _gone: trio.Event = attrs.field(factory=trio.Event)
    _retire: trio.Event = attrs.field(factory=trio.Event)
    _decoder: FrameDecoder = attrs.field(factory=FrameDecoder)

    async def call(self, op: str, **args: Any) -> Any:
        """Send one call and wait for its reply.

        Raises the error the worker replied with (driver errors, ``ValueError``)
        or :class:`WorkerDied`. Cancellation abandons the wait; the frame itself
        is always written whole (the write is shielded).
        """
        if self.dead is not None:
            raise self.dead
        call_id = next(self._ids)
        call = _Call()
        self._pending[call_id] = call
        try:
            frame = encode_frame({"kind": "call", "id": call_id, "op": op, **args})
            try:
                with trio.CancelScope(shield=True):
                    async with self.send_lock:
                        await self.process.stdin.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self._gone.wait()
            await call.done.wait()
        finally:
            del self._pending[call_id]
        if call.error is not None:
            raise call.error
        return call.result

    async def _read_frames(self) -> list[dict[str, Any]]:
        """The next frames from the worker; ``[]`` at EOF."""
        while True:
            chunk = await self.process.stdout.receive_some(READ_CHUNK)
            if not chunk:
                return []
            frames = self._decoder.feed(chunk)
            if frames:
                return frames

    async def hello(self) -> None:
        """Wait for the worker's hello frame (its neonize import is done)."""
        frames = await self._read_frames()
        if not frames or frames[0].get("kind") != "hello":
            raise WorkerStartError(f"neonize worker {self.process.pid} exited or spoke before saying hello")
        self.pid = int(frames[0]["pid"])
        self.import_s = float(frames[0]["import_s"])
        for frame in frames[1:]:
            await self._dispatch(frame)

    async def read_until_eof(self) -> None:
        """Dispatch every frame until the worker's stdout closes (it exited or died)."""
        while frames := await self._read_frames():
            for frame in frames:
                await self._dispatch(frame)

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        match frame.get("kind"):
            case "reply":
                call = self._pending.get(frame.get("id"))  # type: ignore[arg-type]
                if call is None:
                    return  # its caller was cancelled
                if "error" in frame:
                    call.error = decode_error(frame["error"])
                else:
                    call.result = frame.get("result")
                call.done.set()
            case "event" | "closed" | "device":
                placement = self.placements.get(frame.get("session"))  # type: ignore[arg-type]
                if placement is None:
                    return
                try:
                    await placement.deliver(frame)
                except Exception:  # one session's bad frame or bug must not take its worker-mates down
                    log.exception("worker %s: session %s could not take a frame", self.pid, placement.session_id)
            case other:
                raise WorkerProtocolError(f"worker {self.pid}: unknown frame kind {other!r}")

    def retire(self) -> None:
        """Ask the supervising task to let this worker exit (its stdin is closed)."""
        self._retire.set()

    async def wait_retire_request(self) -> None:
        await self._retire.wait()

    def fail(self, error: WorkerDied) -> None:
        """Mark the worker dead: fail every pending call and tell every placement."""
        self.dead = error
        for call in self._pending.values():
            call.error = error
            call.done.set()
        for placement in list(self.placements.values()):
            placement.on_death(error)
        self._gone.set()


@attrs.define(eq=False)
class Placement:
    """A session's client in one worker; :meth:`call` addresses that client."""

    worker: Worker
    session_id: str
    _on_frame: FrameHandler
    _on_death: DeathHandler

    async def deliver(self, frame: dict[str, Any]) -> None:
        """Hand one of this session's event/closed frames to its owner (awaited: backpressure)."""
        await self._on_frame(self, frame)

    def on_death(self, error: WorkerDied) -> None:
        self._on_death(self, error)

    async def call(self, op: str, **args: Any) -> Any:
        """A call about this session's client (see :meth:`Worker.call` for errors and cancellation)."""
        return await self.worker.call(op, session=self.session_id, **args)


@attrs.define(eq=False)
class WorkerPool:
    """Starts, places sessions on, recycles and supervises neonize worker processes.

    Run it with ``await nursery.start(pool.run)``; then drivers ``attach``.
    """

    settings: PoolSettings = attrs.field(factory=PoolSettings)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _workers: list[Worker] = attrs.field(factory=list, init=False)
    _place_lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    _started: int = attrs.field(default=0, init=False)
    _retired: int = attrs.field(default=0, init=False)
    _died: int = attrs.field(default=0, init=False)
    _spool: str | None = attrs.field(default=None, init=False)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the workers' supervising tasks until cancelled (then every worker is stopped)."""
        spool = await trio.to_thread.run_sync(tempfile.mkdtemp, "", "zapvisor-neonize-media-")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._spool = spool
                task_status.started()
                try:
                    await trio.sleep_forever()
                finally:
                    self._nursery = None
                    self._spool = None
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, spool, True)

    def media_file(self) -> str:
        """A fresh path in the spool directory for one media transfer (the caller deletes it).

        Raises :class:`PoolClosedError` when the pool is not running.
        """
        if self._spool is None:
            raise PoolClosedError("the neonize worker pool is not running")
        return f"{self._spool}/{uuid.uuid4().hex}"

    def statistics(self) -> PoolStats:
        return PoolStats(
            workers=len(self._workers),
            draining=sum(w.draining for w in self._workers),
            clients=sum(len(w.placements) for w in self._workers),
            started=self._started,
            retired=self._retired,
            died=self._died,
        )

    @property
    def workers(self) -> tuple[Worker, ...]:
        """The live workers (a snapshot)."""
        return tuple(self._workers)

    async def attach(
        self,
        session_id: str,
        *,
        create: dict[str, Any],
        on_frame: FrameHandler,
        on_death: DeathHandler,
    ) -> Placement:
        """Create ``session_id``'s client in a worker with room (starting one if needed).

        ``create`` holds the client's arguments (``store``, ``qr_limit``, ``jid``,
        ``proxy``); ``on_frame(placement, frame)`` receives the session's event,
        device and closed frames (awaited: a slow consumer slows its worker's pipe);
        ``on_death(placement, error)`` is called once if the worker dies while
        the placement is live.
        Raises :class:`PoolClosedError`, :class:`WorkerStartError`,
        :class:`WorkerDied`, or the worker's refusal (``ValueError``...).
        """
        async with self._place_lock:
            worker = self._choose() or await self._spawn()
            placement = Placement(worker, session_id, on_frame, on_death)
            worker.placements[session_id] = placement
        try:
            await placement.call("create", **create)
        except BaseException:
            worker.placements.pop(session_id, None)
            self._retire_if_idle(worker)
            raise
        return placement

    async def release(self, placement: Placement) -> None:
        """Remove the session's client from its worker (stopping it); never raises a driver error.

        Shielded and bounded by ``stop_grace``: releasing happens during shutdowns.
        """
        worker = placement.worker
        if worker.placements.get(placement.session_id) is not placement:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.settings.stop_grace):
                try:
                    await placement.call("remove")
                except DriverError as exc:
                    log.info("releasing %s from worker %s: %s", placement.session_id, worker.pid, exc)
        worker.placements.pop(placement.session_id, None)
        self._retire_if_idle(worker)

    def note_connect(self, placement: Placement) -> None:
        """Count a connect against the placement's worker; at the limit the worker drains."""
        worker = placement.worker
        worker.connects += 1
        if worker.connects >= self.settings.max_connect_cycles:
            worker.draining = True

    # -- internals ------------------------------------------------------------

    def _choose(self) -> Worker | None:
        candidates = [
            w
            for w in self._workers
            if w.dead is None and not w.draining and len(w.placements) < self.settings.clients_per_worker
        ]
        return max(candidates, key=lambda w: len(w.placements), default=None)

    def _retire_if_idle(self, worker: Worker) -> None:
        if worker.draining and not worker.placements and worker.dead is None:
            worker.retire()

    async def _spawn(self) -> Worker:
        if self._nursery is None:
            raise PoolClosedError("the neonize worker pool is not running")
        return await self._nursery.start(self._supervise)

    async def _supervise(self, *, task_status: trio.TaskStatus[Worker]) -> None:
        threads = max(CALL_THREADS, CALLS_PER_CLIENT * self.settings.clients_per_worker)
        command = [self.settings.python, "-m", WORKER_MODULE, "--log-level", self.settings.log_level,
                   "--call-threads", str(threads)]
        try:
            process = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            raise WorkerStartError(f"cannot start a neonize worker ({command[0]}): {exc}") from exc
        worker = Worker(process)
        try:
            with trio.move_on_after(self.settings.start_timeout) as start_scope:
                await worker.hello()
            if start_scope.cancelled_caught:
                raise WorkerStartError(f"neonize worker {process.pid} said no hello within {self.settings.start_timeout} s")
            self._workers.append(worker)
            self._started += 1
            task_status.started(worker)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._retire_when_asked, worker)
                try:
                    await worker.read_until_eof()
                except WorkerProtocolError:
                    log.exception("neonize worker %s broke the pipe protocol; killing it", worker.pid)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._stop_process(process)
            if worker in self._workers:
                self._workers.remove(worker)
            if worker.pid:  # it had started: account for its end, fail whoever still depends on it
                # Exit status 0 only follows stdin EOF, which only the pool causes
                # (retirement or shutdown); anything else is a death.
                if process.returncode == 0:
                    self._retired += 1
                else:
                    self._died += 1
                    log.warning("neonize worker %s died (%s)", worker.pid, process.returncode)
                worker.fail(WorkerDied(worker.pid, process.returncode))

    async def _retire_when_asked(self, worker: Worker) -> None:
        await worker.wait_retire_request()
        async with worker.send_lock:
            await worker.process.stdin.aclose()  # the worker exits at EOF; the reader then sees EOF

    async def _stop_process(self, process: trio.Process) -> None:
        if process.stdin is not None:
            await process.stdin.aclose()
        with trio.move_on_after(self.settings.stop_grace):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
