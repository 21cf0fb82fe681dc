"""A neonize worker process: ``python -m actors.drivers.neonize._worker [--log-level LEVEL]``.

Started and supervised by :class:`~actors.drivers.neonize.WorkerPool` (the
daemon side, an Erlang-style "port"). It hosts a few neonize clients
(:class:`~actors.drivers.neonize._host.ClientHost`) and talks to the daemon
with the framed JSON protocol of ``_wire`` over its stdin/stdout pipes. When
stdin reaches EOF (the daemon closed it, or died) it exits at once with
``os._exit``: clients stuck in a Go dial would otherwise keep the process alive
for up to a minute, and nothing in here needs an orderly shutdown (whatsmeow's
stores are crash-safe databases).

What was verified on neonize 0.5.2, on this machine (no route to WhatsApp):

* ``import neonize`` costs ~0.6 s and calls ``logging.basicConfig`` (root
  logger: a stderr handler at INFO). This process therefore resets the levels
  after importing it (``--log-level``, WARNING by default, also handed to Go).
* ``NewClient.connect()`` blocks its calling thread for the connection's whole
  life (it runs Go's ``Neonize()`` on an inner thread and polls it). With no
  network it raises ``NeonizeError("failed to dial whatsapp web websocket: ...
  no such host")`` within milliseconds. Through an HTTP proxy that accepts and
  never answers, it blocked until whatsmeow's 60 s dial deadline, and
  ``stop()`` did **not** shorten that wait: ``stop()`` itself blocks until the
  dial ends (so ``_host`` defers stops of connections still dialing).
* Callbacks are dispatched by ``Event.execute(uuid, ptr, size, code)``, which
  ctypes wraps as the ``func_callback_bytes`` thunk handed to Go in
  ``client._connect_refs[2]`` (the QR thunk is ``[0]``); called with a C buffer
  of serialized protobuf bytes it parses them with ``FromString`` and runs the
  callback registered for that event code on the calling thread - Go's thread
  in production. Event messages are proto2: all required fields must be set
  for ``FromString`` to accept them (Go's encoder always sets them).
* 16 clients connecting concurrently (no lock) in one process abort it within
  seconds: exit status 134 (SIGABRT), "fatal error: concurrent map writes" in
  ``main.Neonize``. The same load with starts and stops serialized by one lock
  survived.
* Each ``connect()`` leaves one more descriptor open on the client's store
  (``/proc/self/fd`` gains a link to the SQLite file per connect): hence the
  pool recycles a worker after ``max_connect_cycles`` connects.
* Neonize and Go print to stdout (``NewClient``'s login-status callback is a
  ``print``; Go prints send errors): fd 1 is pointed at stderr, frames go to a
  private duplicate of the original stdout.
* Calling some Go functions on a client without a live connection kills the
  process (``GetPNFromLID`` -> nil pointer panic); see ``_host``.

The reader (the main thread) and the writer thread are the worker's only link
to the daemon: any error in either (a frame that cannot be encoded, a torn or
oversized frame from the daemon, an I/O error) ends the process at once with
:data:`EXIT_PIPE_FAILURE`; EOF on stdin or a broken pipe (the daemon is gone)
ends it with 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from ._wire import FrameDecoder, encode_error, encode_frame, is_driver_error

CALL_THREADS: Final = 64
"""Calls run concurrently on at least this many threads (``--call-threads``: the
pool gives more to workers hosting many clients, see ``_pool.CALLS_PER_CLIENT``).
A call blocked in Go (a send while WhatsApp is slow) holds its thread; a
``connect`` holds one for at most ``_host.SETTLE_S``."""

READ_CHUNK: Final = 1 << 16

EXIT_PIPE_FAILURE: Final = 74
"""Exit status when the reader or the writer fails (``EX_IOERR``). A worker whose
pipe thread died would live on answering nothing, unnoticed, with every session
it hosts silent; exiting makes the pool see a death and restart them."""

log = logging.getLogger("actors.drivers.neonize.worker")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _configure_logging(level_name: str) -> None:
    """Undo neonize's ``basicConfig`` levels: keep its stderr handler, at our level."""
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise SystemExit(f"--log-level: unknown level {level_name!r}")
    logging.getLogger().setLevel(level)
    # neonize hands Go the level of this logger (LogLevel.from_logging) on each connect.
    logging.getLogger("neonize.utils.log").setLevel(level)
    # neonize warns on every process that ffmpeg is missing; zapvisor builds media
    # messages itself and never needs it.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    """Run the worker until stdin closes; never returns (``os._exit``)."""
    parser = argparse.ArgumentParser(prog="zapvisor-neonize-worker")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--call-threads", type=int, default=CALL_THREADS)
    args = parser.parse_args(argv)

    frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    started = time.monotonic()
    import neonize

    from ._host import DEFERRED, ClientHost

    import_s = time.monotonic() - started
    _configure_logging(args.log_level)

    outbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()  # drained by the writer; see _host

    def writer() -> None:
        while True:
            frame = outbox.get()
            try:
                _write_all(frames_fd, encode_frame(frame))
            except BrokenPipeError:
                os._exit(0)  # the daemon is gone: nobody to work for
            except BaseException:  # the thread's boundary: see EXIT_PIPE_FAILURE
                _die(f"the writer failed on a {frame.get('kind')} frame")

    threading.Thread(target=writer, name="writer", daemon=True).start()
    calls = ThreadPoolExecutor(max_workers=max(1, args.call_threads), thread_name_prefix="call")
    host = ClientHost(emit=outbox.put, submit=calls.submit)
    host.start()

    def run_call(frame: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": frame.get("id")}
        try:
            result = host.call(str(frame.get("op")), frame)
            if result is DEFERRED:
                return
            reply["result"] = result
        except Exception as exc:  # the call's boundary: every error becomes a reply
            if not is_driver_error(exc):
                log.exception("call %s failed", frame.get("op"))
            reply["error"] = encode_error(exc)
        outbox.put(reply)

    outbox.put({"kind": "hello", "pid": os.getpid(), "neonize": neonize.__version__, "import_s": import_s})
    decoder = FrameDecoder()
    try:
        while chunk := os.read(0, READ_CHUNK):
            for frame in decoder.feed(chunk):
                calls.submit(run_call, frame)
    except BaseException:  # the reader's boundary: see EXIT_PIPE_FAILURE
        _die("the reader failed")
    os._exit(0)


def _die(what: str) -> None:
    """Log the error being handled and end the process at once (no thread can keep it alive)."""
    try:
        log.critical("%s; ending the worker so the pool restarts its sessions", what, exc_info=True)
    finally:
        os._exit(EXIT_PIPE_FAILURE)


if __name__ == "__main__":
    main()
