"""The little of a vCard a helpdesk needs: a contact card's name and phone numbers.

WhatsApp shares contacts as vCard 3.0 text (``contactMessage.vcard``), e.g.::

    BEGIN:VCARD
    VERSION:3.0
    N:Silva;Ana;;;
    FN:Ana Silva
    TEL;type=CELL;type=VOICE;waid=5521999990000:+55 21 99999-0000
    END:VCARD

Only ``FN`` (else ``N``) and the ``TEL`` lines are read, with the ``waid`` parameter
WhatsApp adds when the number has an account. A hand-written parser rather than a
library (``vobject``): those three properties, line unfolding and the escapes of RFC 6350
§3.4 are all it takes, and a full iCalendar/vCard library (with its date-handling
dependencies) would be a dependency for three properties. Malformed text never raises:
what cannot be read is left out (the raw card is kept beside the parsed form).
"""

from __future__ import annotations

from typing import Any


def _unfold(text: str) -> list[str]:
    """The logical lines: a line starting with a space or a tab continues the previous one."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]
        elif line.strip():
            lines.append(line)
    return lines


def _unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append("\n" if following in ("n", "N") else following)
        else:
            out.append(char)
    return "".join(out).strip()


def _property(line: str) -> tuple[str, dict[str, list[str]], str]:
    """``(NAME, params, value)`` of one content line (the group prefix, ``item1.``, dropped)."""
    head, _, value = line.partition(":")
    name, *params = head.split(";")
    parsed: dict[str, list[str]] = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed.setdefault(key.strip().lower(), []).extend(v.strip().lower() for v in val.split(",") if v.strip())
    return name.rsplit(".", 1)[-1].strip().upper(), parsed, value


def parse_vcards(text: str) -> list[dict[str, Any]]:
    """Every card in ``text``: ``{"name": str | None, "phones": [{"number", "wa_id", "type"}]}``."""
    cards: list[dict[str, Any]] = []
    card: dict[str, Any] | None = None
    structured = None  # the N property, used when a card has no FN
    for line in _unfold(text):
        name, params, value = _property(line)
        if name == "BEGIN" and value.strip().upper() == "VCARD":
            card, structured = {"name": None, "phones": []}, None
        elif card is None:
            continue
        elif name == "END":
            if card["name"] is None and structured:
                card["name"] = structured
            cards.append(card)
            card = None
        elif name == "FN" and _unescape(value):
            card["name"] = _unescape(value)
        elif name == "N":
            parts = [_unescape(part) for part in value.split(";")]
            given = [parts[i] for i in (3, 1, 2, 0, 4) if i < len(parts) and parts[i]]
            structured = " ".join(given) or None
        elif name == "TEL" and _unescape(value):
            types = [t for t in params.get("type", []) if t not in ("voice", "pref")]
            wa_id = (params.get("waid") or [None])[0]
            card["phones"].append({"number": _unescape(value), "wa_id": wa_id, "type": types[0] if types else None})
    return cards
