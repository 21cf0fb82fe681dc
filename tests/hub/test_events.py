import json

import pytest

from actors.hub import Event, InvalidEvent, RoomLog, check_type, control


def event(seq: int) -> Event:
    return Event("message.created", "tenant:a", seq, {"n": seq}, 1.5)


def test_an_event_is_encoded_once_as_its_frame():
    e = event(3)
    assert json.loads(e.frame) == {"type": "message.created", "room": "tenant:a", "seq": 3, "payload": {"n": 3},
                                   "at": 1.5}


@pytest.mark.parametrize("bad", ["created", "Message.created", "message.", "lagged", "", None, "a.b c"])
def test_event_types_are_dotted_lower_case_names(bad):
    with pytest.raises(InvalidEvent, match="type"):
        check_type(bad)


def test_payload_must_be_a_json_object():
    with pytest.raises(TypeError):
        Event("message.created", "tenant:a", 1, ["not", "an", "object"], 0.0)
    with pytest.raises(InvalidEvent, match="payload"):
        Event("message.created", "tenant:a", 1, {"x": object()}, 0.0)
    with pytest.raises(InvalidEvent, match="payload"):
        Event("message.created", "tenant:a", 1, {"x": float("nan")}, 0.0)


def test_control_frames():
    assert json.loads(control("pong", id=7)) == {"type": "pong", "id": 7}


def test_room_log_replays_what_is_kept_and_asks_for_resync_otherwise():
    log = RoomLog("e.1", capacity=3)
    assert log.since(0) == []
    for seq in range(1, 6):
        log.append(event(seq))
    assert [json.loads(frame)["seq"] for frame in log.since(2)] == [3, 4, 5]
    assert log.since(4) == [event(5).frame]
    assert log.since(5) == []
    assert log.since(1) is None  # seq 2 is gone
    assert log.since(6) is None  # from the future: another incarnation
    assert log.since(-1) is None


def test_the_frame_is_built_on_first_use_from_the_payload_json():
    e = Event("message.created", "ticket:7", 4, {"text": "olá"}, 1_700_000_000.25,
              payload_json='{"text": "ol\\u00e1"}')  # the text a caller already had, used verbatim
    with pytest.raises(AttributeError):
        object.__getattribute__(e, "frame")  # not built at construction
    assert e.frame == ('{"type":"message.created","room":"ticket:7","seq":4,'
                       '"payload":{"text": "ol\\u00e1"},"at":1700000000.25}')
    assert json.loads(e.frame) == {"type": "message.created", "room": "ticket:7", "seq": 4,
                                   "payload": {"text": "olá"}, "at": 1_700_000_000.25}
    assert e.frame is e.frame  # built once
