"""The pipe protocol between the daemon and a neonize worker: frames, events, errors.

Shared by both ends and free of neonize and trio, so the daemon can import it.

Framing
-------
A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON (one object). The worker reads frames from its stdin and writes frames to
a private duplicate of its original stdout; its fd 1 is redirected to stderr at
start, because neonize and its Go core print to stdout (a ``print(status)`` in
``NewClient``, Go's ``fmt.Println`` on send errors), which would corrupt the
stream. Pipes rather than a unix socket: the process owns them from birth, so
there is no path to create, secure and clean up, and EOF on either side is the
other side's death, which is exactly the signal each side needs.

Media
-----
Media bytes travel as files, never inside frames: a frame stays small whatever
the attachment's size (``media.max_bytes`` allows 100 MiB, beyond any sane frame).
The daemon names a file in the pool's private spool directory (mode 0700,
removed with the pool): ``send_media`` carries ``file`` (written by the daemon,
read by the worker), ``download_media`` carries ``file`` (written by the worker,
whose reply is only ``{"size": n}``, then read by the daemon). The daemon
deletes the file once the call is over, whatever its outcome.

Frame kinds (``"kind"`` key)
----------------------------
daemon -> worker: ``{"kind": "call", "id": n, "op": ..., **arguments}``.
worker -> daemon:

* ``hello`` - once, after neonize is imported: ``pid``, ``neonize`` version,
  ``import_s`` (seconds spent importing neonize).
* ``reply`` - ``id`` and either ``result`` or ``error`` (see :func:`encode_error`).
* ``event`` - ``session``, ``conn`` (the connection number within that
  session's client) and ``event`` (see :func:`encode_event`).
* ``closed`` - ``session``, ``conn``: that connection's blocking ``connect()``
  call returned in the worker (its thread is gone).
* ``device`` - ``session``, ``jid``: the client's whatsmeow device changed: the
  full JID it paired as or resumed (``user:device@server``), or ``null`` when
  the device is gone (logged out, wiped, missing from the store). Sent before
  the event that revealed it, so the daemon persists it first.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any, Final

import attrs

from .._errors import (
    DriverConnectError,
    DriverError,
    DriverStateError,
    MediaNotFoundError,
    NotConnectedError,
    RequestError,
    RequestInterruptedError,
    RequestTimeoutError,
)
from .._events import (
    CallOffer,
    ClientOutdated,
    Connected,
    Disconnected,
    Event,
    HistoryChat,
    HistoryChunk,
    KeepaliveLost,
    KeepaliveRestored,
    LidMapped,
    LoggedOut,
    MediaKind,
    MediaRef,
    Message,
    OfflineSyncDone,
    PairingCode,
    PairSuccess,
    Presence,
    PresenceState,
    Qr,
    Receipt,
    ReceiptKind,
    Replaced,
    TemporaryBan,
    Undecryptable,
)
from ._errors import WorkerProtocolError

_HEADER: Final = struct.Struct(">I")

MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Largest frame either side accepts. Media never travels in frames (see *Media*
above): the largest legitimate frame is an event with a message's text (WhatsApp
caps it at 64 Ki characters) and a media reference. Anything larger is a protocol
error, not a reason to buffer without bound; a worker that cannot write a frame
exits (``_worker``), so its sessions restart on a fresh one."""

_EVENT_TYPES: Final[dict[str, type]] = {
    cls.__name__: cls
    for cls in (
        Connected,
        Disconnected,
        LoggedOut,
        TemporaryBan,
        Replaced,
        ClientOutdated,
        KeepaliveLost,
        KeepaliveRestored,
        Qr,
        PairingCode,
        PairSuccess,
        Message,
        Receipt,
        OfflineSyncDone,
        Undecryptable,
        Presence,
        LidMapped,
        CallOffer,
        HistoryChunk,
    )
}


def _decode_media_ref(value: dict[str, Any] | None) -> MediaRef | None:
    if value is None:
        return None
    return MediaRef(**{**value, "kind": MediaKind(value["kind"])})


def _decode_history_chat(value: dict[str, Any]) -> HistoryChat:
    messages = tuple(Message(**{**m, "media": _decode_media_ref(m.get("media"))}) for m in value["messages"])
    return HistoryChat(**{**value, "messages": messages})


# Fields whose JSON form is not the attrs value itself (enums, nested values).
_FIELD_DECODERS: Final[dict[tuple[type, str], Callable[[Any], Any]]] = {
    (Receipt, "kind"): ReceiptKind,
    (Presence, "state"): PresenceState,
    (Message, "media"): _decode_media_ref,
    (HistoryChunk, "chats"): lambda chats: tuple(_decode_history_chat(chat) for chat in chats),
}


def _plain(_instance: object, _attribute: object, value: Any) -> Any:
    if isinstance(value, (ReceiptKind, PresenceState, MediaKind)):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def encode_event(event: Event) -> dict[str, Any]:
    """A JSON-ready dict for a normalized event: its type name and its fields."""
    return {"type": type(event).__name__, **attrs.asdict(event, value_serializer=_plain)}


def decode_event(data: dict[str, Any]) -> Event:
    """Rebuild the normalized event of :func:`encode_event`.

    Raises :class:`WorkerProtocolError` for an unknown type or fields that do not
    fit it (the event classes validate their values).
    """
    fields = dict(data)
    name = fields.pop("type", None)
    cls = _EVENT_TYPES.get(name)  # type: ignore[arg-type]
    if cls is None:
        raise WorkerProtocolError(f"event frame: unknown event type {name!r}")
    try:
        for key, value in fields.items():
            decoder = _FIELD_DECODERS.get((cls, key))
            if decoder is not None:
                fields[key] = decoder(value)
        return cls(**fields)
    except (TypeError, ValueError, KeyError) as exc:
        raise WorkerProtocolError(f"event frame: bad {name} fields {data!r}: {exc}") from exc


# -- errors ---------------------------------------------------------------------

_ERROR_TYPES: Final[dict[str, type[Exception]]] = {
    cls.__name__: cls
    for cls in (
        DriverConnectError,
        NotConnectedError,
        RequestInterruptedError,
        RequestError,
        RequestTimeoutError,
        MediaNotFoundError,
        DriverStateError,
        ValueError,
    )
}
_WITH_CODE: Final = (DriverConnectError, RequestError)


def encode_error(exc: Exception) -> dict[str, Any]:
    """The ``error`` member of a reply: the error's class name, message and WhatsApp code."""
    name = type(exc).__name__ if type(exc).__name__ in _ERROR_TYPES else "RequestError"
    message = str(exc) if name == type(exc).__name__ else f"{type(exc).__name__}: {exc}"
    return {"type": name, "message": message, "code": getattr(exc, "code", None)}


def decode_error(data: dict[str, Any]) -> Exception:
    """The exception a reply's ``error`` stands for (a driver error, or ``ValueError`` for bad input)."""
    cls = _ERROR_TYPES.get(data.get("type", ""), RequestError)
    message = str(data.get("message", ""))
    if issubclass(cls, _WITH_CODE):
        return cls(message, code=data.get("code"))
    return cls(message)


def is_driver_error(exc: BaseException) -> bool:
    """True for errors that travel back to the caller as a reply (the rest are worker bugs)."""
    return isinstance(exc, (DriverError, ValueError))


# -- bytes ----------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Bytes as the ASCII text a JSON frame can carry."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Inverse of :func:`b64encode`; raises ``ValueError`` for text that is not base64."""
    return base64.b64decode(text.encode("ascii"), validate=True)


# -- framing --------------------------------------------------------------------


def encode_frame(obj: dict[str, Any]) -> bytes:
    """One frame: length header + compact UTF-8 JSON. Raises ``WorkerProtocolError`` if too big."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise WorkerProtocolError(f"frame of {len(body)} bytes exceeds MAX_FRAME_BYTES={MAX_FRAME_BYTES}")
    return _HEADER.pack(len(body)) + body


@attrs.define(eq=False)
class FrameDecoder:
    """Turns a byte stream into frames (objects), whatever the chunking of the stream.

    ``feed(chunk)`` returns every frame completed by that chunk. It raises
    :class:`WorkerProtocolError` on an oversized header or a body that is not a
    JSON object; the stream is then unusable (framing is lost).
    """

    _buffer: bytearray = attrs.field(factory=bytearray, init=False)

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        frames: list[dict[str, Any]] = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_FRAME_BYTES:
                raise WorkerProtocolError(f"frame header announces {size} bytes (> {MAX_FRAME_BYTES})")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            try:
                obj = json.loads(body)
            except ValueError as exc:
                raise WorkerProtocolError(f"frame body is not JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise WorkerProtocolError(f"frame body is not a JSON object: {obj!r:.80}")
            frames.append(obj)
        return frames

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet part of a complete frame (non-zero at EOF: a torn frame)."""
        return len(self._buffer)
