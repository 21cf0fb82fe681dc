"""Message kinds as values: payload checks, the line agents read, vCards parsed, placeholders."""

import pytest

from actors.drivers import PLACEHOLDER_TEXT, Message, MessageKind, Undecryptable, parse_vcards, summary


def _message(**fields) -> Message:
    return Message(id="M1", chat_jid="55@s.whatsapp.net", sender_jid="55@s.whatsapp.net", from_me=False,
                   timestamp=1.0, **fields)


def test_payloads_are_checked_and_operations_name_their_target():
    assert _message(kind="location", payload={"latitude": 1.0, "longitude": 2.0}).kind is MessageKind.LOCATION
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        _message(kind="poll", payload={"name": "q", "colour": "red"})
    for kind in ("reaction", "edit", "revoke", "poll_vote"):
        with pytest.raises(ValueError, match="needs the target_id"):
            _message(kind=kind)
    with pytest.raises(ValueError):
        _message(kind="hologram")


@pytest.mark.parametrize(("kind", "payload", "text", "line"), [
    ("text", {}, "hi", "hi"),
    ("text", {}, "", "(empty message)"),
    ("image", {"view_once": True}, "", "🖼 image (view once)"),
    ("image", {}, "a caption", "a caption"),
    ("ptt", {"duration": 75}, "", "🎤 voice note (1:15)"),
    ("document", {"file_name": "a.pdf"}, "", "📄 document: a.pdf"),
    ("location", {"latitude": -22.9, "longitude": -43.2}, "", "📍 location: (-22.9, -43.2)"),
    ("live_location", {"latitude": 1, "longitude": 2}, "", "📍 live location (1, 2)"),
    ("contacts", {"contacts": [{"name": "Ana", "phones": [{"number": "+55 1"}]}, {"name": None, "phones": []}]}, "",
     "👤 contact: Ana +55 1; ?"),
    ("contacts", {"contacts": []}, "", "👤 contact card"),
    ("poll", {"name": "When?", "options": ["am", "pm"]}, "", "📊 poll: When? [am, pm]"),
    ("poll_vote", {"selected": []}, "", "🗳 poll vote: (vote withdrawn)"),
    ("poll_vote", {"encrypted": True}, "", "🗳 poll vote (encrypted)"),
    ("button_reply", {"id": "b1"}, "", "🔘 b1"),
    ("list_reply", {"id": "r1", "title": "Plan"}, "", "📋 Plan"),
    ("unknown", {"type": "eventMessage"}, "", "❔ unsupported message (eventMessage)"),
    ("undecryptable", {}, "", PLACEHOLDER_TEXT),
])
def test_the_line_agents_read_is_never_empty(kind, payload, text, line):
    assert summary(MessageKind(kind), payload, text) == line


def test_vcards_names_numbers_folding_and_escapes():
    text = ("BEGIN:VCARD\r\nVERSION:3.0\r\nN:Silva;Ana;Maria;Dr.;\r\nitem1.TEL;type=CELL;type=VOICE;waid=5521999990000:"
            "+55 21 99999-\r\n 0000\r\nTEL;TYPE=work:+55 21 3333-0000\r\nEND:VCARD\r\n"
            "BEGIN:VCARD\nFN:Bob\\, the builder\nEND:VCARD\nnot a card\n")
    assert parse_vcards(text) == [
        {"name": "Dr. Ana Maria Silva", "phones": [
            {"number": "+55 21 99999-0000", "wa_id": "5521999990000", "type": "cell"},
            {"number": "+55 21 3333-0000", "wa_id": None, "type": "work"}]},
        {"name": "Bob, the builder", "phones": []},
    ]
    assert parse_vcards("") == [] and parse_vcards("BEGIN:VCARD\nFN:unterminated") == []


def test_an_undecryptable_message_becomes_its_placeholder():
    placeholder = Undecryptable("U1", "120363@g.us", "55@s.whatsapp.net", 5.0, is_unavailable=True).placeholder()
    assert (placeholder.kind, placeholder.payload, placeholder.is_group, placeholder.text) == (
        MessageKind.UNDECRYPTABLE, {"unavailable": True}, True, "")
