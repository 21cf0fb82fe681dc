"""Messages of the outbox service (``/services/outbox``) besides the queue administration ones."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class MediaFile:
    """An attachment already on disk: the outbox row keeps where it is, never its bytes.

    ``kind`` is a :class:`~actors.drivers.MediaKind` value (image, video, audio, document, sticker).
    """

    path: str
    kind: str
    mimetype: str
    file_name: str | None = None


@attrs.frozen
class Send:
    """Queue a text (or an attachment, ``text`` its caption) for ``to`` through ``session_id``;
    ``idempotency_key`` names the request.

    Reply: the store's Enqueued (``created`` False for a repeated key: nothing new is sent), or
    OutboxRefused naming the bad field. The row is durable when the reply arrives.
    """

    tenant_id: str
    session_id: str
    idempotency_key: str
    to: str
    text: str
    ticket_id: int | None = None
    media: MediaFile | None = None
    #: The message a text replies to (``actors.drivers.Quote``); kept in the row's payload.
    quote: Any = None


@attrs.frozen
class SessionDeleted:
    """``session_id`` was deleted: the service forgets it (its status pause, if any). No reply."""

    session_id: str


@attrs.frozen
class OutboxRefused:
    code: str
    message: str
    field: str | None = None
