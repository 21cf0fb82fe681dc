"""Text both backends can store, and the raw form of text that had to be changed for it (DESIGN §10).

Some Python strings cannot be written by one engine or the other: a lone UTF-16 surrogate
(``"\\ud800"``, valid in JSON, not encodable as UTF-8: UnicodeEncodeError in sqlite3, DataError
in asyncpg) and NUL (PostgreSQL's ``text`` refuses ``\\x00``; SQLite takes it). What WhatsApp
sends must never be refused — refusing would lose it and make the session crash-loop on the
re-delivery — so message bodies, captions and contact names go through :func:`storable`: the
unstorable characters become U+FFFD (the Unicode replacement character) and the original is
kept as its JSON string literal (``json.dumps``, ASCII-only, so itself always storable:
``json.loads`` gives the exact original back). Both backends store the same thing.

Emoji, RTL and zero-width marks and long strings are valid text: they pass unchanged.
"""

from __future__ import annotations

import json

#: What an unstorable character becomes.
REPLACEMENT = "\ufffd"


def storable(text: str) -> tuple[str, str | None]:
    """``(clean, raw)``: ``text`` with lone surrogates and NUL replaced by U+FFFD, and the JSON
    literal of the original when anything was replaced (None when ``text`` was storable as is).

    A well-formed surrogate *pair* held as two code points (it happens when text was assembled
    from UTF-16 pieces) is joined into the character it encodes, not replaced. Cheap on the hot
    path: ASCII text is one scan, other valid text one UTF-8 encode.
    """
    if text.isascii():
        if "\x00" not in text:
            return text, None
    else:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            if "\x00" not in text:
                return text, None
    # utf-16 with surrogatepass joins valid pairs; decoding with "replace" turns lone ones into U+FFFD
    clean = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").replace("\x00", REPLACEMENT)
    return clean, json.dumps(text)


def storable_text(text: str) -> str:
    """Only the clean half of :func:`storable` (for what is shown or published, not stored)."""
    return storable(text)[0]
