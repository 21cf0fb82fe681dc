"""Errors raised by drivers. One root, :class:`DriverError`; each also subclasses
the stdlib error it resembles so generic handlers (``except ConnectionError``)
keep working."""

from __future__ import annotations

import os
from typing import ClassVar


class DriverError(Exception):
    """Root of every error a driver raises.

    ``restart_immediately``: the failure was in the driver's own host (a worker
    process died), not in WhatsApp: the session reconnects at once on a fresh
    driver, without backoff or a breaker count.
    """

    restart_immediately: ClassVar[bool] = False


class DriverConnectError(DriverError, ConnectionError):
    """``connect()`` could not open a connection (server unreachable, refused, handshake failed).

    ``code`` is the WhatsApp reason code when the server refused with one
    (e.g. 402 while banned, 503 unavailable), else ``None``.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotConnectedError(DriverError, ConnectionError):
    """An operation needs an open connection and there is none (never connected, or it ended)."""


class RequestInterruptedError(NotConnectedError):
    """A request went out, but its connection ended before the answer came.

    A :class:`NotConnectedError` (the connection is gone) whose request, unlike a plain one,
    may have been carried out by WhatsApp: a send may exist. Callers that must not act twice
    treat it as an unknown outcome, like :class:`RequestTimeoutError`.
    """


class RequestError(DriverError, RuntimeError):
    """WhatsApp answered a request (send, download, pair...) with an error.

    ``code`` is the server's numeric error code when it gave one.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RequestTimeoutError(RequestError, TimeoutError):
    """WhatsApp did not answer a request in time (the connection may be stalled)."""


class ProbeTimeoutError(RequestTimeoutError):
    """``probe()`` got no answer in time: the connection is not proven alive."""


class MediaNotFoundError(RequestError, LookupError):
    """``download_media()`` was given a reference the server no longer knows."""


class DriverStateError(DriverError, RuntimeError):
    """The driver was used out of order (``connect()`` before ``run()``, twice at once, ...)."""


def connect_cause(error: BaseException) -> str:
    """Why a connect failed, in words, never empty: the OS error at the bottom of ``error``'s chain.

    Websocket libraries wrap the dial's failure (``HandshakeError()``, whose text is empty, caused
    by ``OSError("all attempts to connect ... failed")``, caused by a group of the per-address
    errors): the words a user can act on are the innermost OS error's ("Connection refused", "Name
    or service not known"). Without one, the first non-empty text in the chain, else the type.
    """
    stack, seen, texts = [error], set(), []
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno is not None and not isinstance(exc, BaseExceptionGroup):
            return os.strerror(exc.errno) if exc.errno > 0 else str(exc.strerror or exc)
        texts.append(str(exc))
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(reversed(exc.exceptions))
        for inner in (exc.__context__, exc.__cause__):  # the cause is looked at first
            if inner is not None:
                stack.append(inner)
    return next((text for text in texts if text), type(error).__name__)
