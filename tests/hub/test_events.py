import json

import pytest

from actors.hub import Hub, InvalidEvent, Room, RoomLog, check_type, control, event_frame


def test_a_frame_is_the_event_as_compact_json():
    frame = event_frame("message.created", "tenant:a", 3, '{"n":3}', 1.5)
    assert json.loads(frame) == {"type": "message.created", "room": "tenant:a", "seq": 3, "payload": {"n": 3},
                                 "at": 1.5}


def test_a_frame_uses_the_payload_json_it_is_given_verbatim():
    frame = event_frame("message.created", "ticket:7", 4, '{"text": "ol\\u00e1"}', 1_700_000_000.25)
    assert frame == ('{"type":"message.created","room":"ticket:7","seq":4,'
                     '"payload":{"text": "ol\\u00e1"},"at":1700000000.25}')
    assert json.loads(frame)["payload"] == {"text": "olá"}


@pytest.mark.parametrize("bad", ["created", "Message.created", "message.", "lagged", "", None, "a.b c"])
def test_event_types_are_dotted_lower_case_names(bad):
    with pytest.raises(InvalidEvent, match="type"):
        check_type(bad)


@pytest.mark.parametrize("bad", [["not", "an", "object"], {"x": object()}, {"x": float("nan")}, "text"])
def test_payload_must_be_a_json_object(bad):
    hub = Hub()
    with pytest.raises(InvalidEvent, match="payload"):
        hub.publish(Room.tenant("a"), "message.created", bad)
    with pytest.raises(InvalidEvent, match="payload"):
        hub.emit("a", "message.created", bad, ticket_id=1)
    assert hub.room_seq(Room.tenant("a")) == 0  # nothing half-published


def test_control_frames():
    assert json.loads(control("pong", id=7)) == {"type": "pong", "id": 7}


def test_room_log_replays_what_is_kept_and_asks_for_resync_otherwise():
    log = RoomLog("tenant:a", "e.1", capacity=3)
    assert log.since(0) == []
    for seq in range(1, 6):
        assert log.append("message.created", json.dumps({"n": seq}), 1.5) == seq
    assert [json.loads(frame)["seq"] for frame in log.since(2)] == [3, 4, 5]
    assert log.since(4) == [event_frame("message.created", "tenant:a", 5, '{"n": 5}', 1.5)]
    assert log.since(5) == []
    assert log.since(1) is None  # seq 2 is gone
    assert log.since(6) is None  # from the future: another incarnation
    assert log.since(-1) is None


def test_room_log_drops_events_older_than_its_max_age_as_new_ones_come():
    """A long-lived busy room keeps minutes of events, not its last ``capacity`` for ever (the soak's
    growth: hundreds of open tickets' rooms each filling towards 256 events)."""
    log = RoomLog("ticket:a:1", "e.1", capacity=256, max_age=300.0, min_kept=4)
    for seq in range(1, 101):  # one event every 30 s for 50 minutes
        log.append("message.created", json.dumps({"n": seq}), 30.0 * seq)
    kept = log.since(89)
    assert [json.loads(frame)["seq"] for frame in kept] == list(range(90, 101))  # the last 300 s
    assert log.since(88) is None  # older: resync
    quiet = RoomLog("ticket:a:2", "e.2", capacity=256, max_age=300.0, min_kept=4)
    for seq in range(1, 5):  # a slow walkthrough: an event every 10 minutes
        quiet.append("ticket.updated", "{}", 600.0 * seq)
    assert len(quiet.since(0)) == 4  # its last min_kept events stay, whatever their age
    quiet.append("ticket.updated", "{}", 3000.0)
    assert quiet.since(0) is None and len(quiet.since(1)) == 4
