"""Content-type detection and atomic file storage for downloaded media (blocking: run in a thread)."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
import time
from pathlib import Path

#: Magic numbers of the formats WhatsApp carries: (offset, signature, extension).
_MAGIC = (
    (0, b"\xff\xd8\xff", "jpg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"%PDF-", "pdf"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (0, b"\xff\xfb", "mp3"),
    (0, b"PK\x03\x04", "zip"),
    (4, b"ftyp", "mp4"),
)

_FALLBACK_EXTENSION = "bin"


def detect_extension(data: bytes, declared_mimetype: str | None) -> str:
    """The file extension for ``data``: its magic bytes first (senders lie), then the declared type."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for offset, signature, extension in _MAGIC:
        if data[offset:offset + len(signature)] == signature:
            return extension
    if declared_mimetype:
        guessed = mimetypes.guess_extension(declared_mimetype.split(";", 1)[0].strip())
        if guessed:
            return guessed.lstrip(".")
    return _FALLBACK_EXTENSION


def relative_path(tenant_id: str, message_id: int, created_at: float, extension: str) -> Path:
    """``<tenant>/<yyyy>/<mm>/<message id>.<ext>`` (UTC month of the job)."""
    moment = time.gmtime(created_at)
    return Path(tenant_id) / f"{moment.tm_year:04d}" / f"{moment.tm_mon:02d}" / f"{message_id}.{extension}"


def write_atomically(root: Path, relative: Path, data: bytes) -> Path:
    """Write ``data`` to ``root/relative`` all-or-nothing: a temp file in the same directory,
    fsynced, then renamed over the target. On any failure the temp file is removed."""
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target
