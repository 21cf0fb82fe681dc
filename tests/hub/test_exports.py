import actors.hub


def test_public_face_is_pinned():
    assert sorted(actors.hub.__all__) == sorted([
        "ADMIN_ROLE", "BUS_CHANNEL", "CLIENT_CAPACITY", "CONTROL_TYPES", "REPLAY_CAPACITY", "TOO_SLOW",
        "Client", "ClientClosed", "Hub", "HubError", "HubStatistics", "InvalidEvent", "InvalidRoom",
        "Offer", "Publisher", "Room", "RoomForbidden", "RoomKind", "RoomLog", "Tap", "check_type", "control",
        "event_frame", "resolve",
    ])
    for name in actors.hub.__all__:
        assert getattr(actors.hub, name) is not None


def test_errors_share_one_root_and_resemble_the_stdlib():
    assert issubclass(actors.hub.InvalidRoom, ValueError)
    assert issubclass(actors.hub.InvalidEvent, ValueError)
    assert issubclass(actors.hub.RoomForbidden, PermissionError)
    for error in (actors.hub.InvalidRoom, actors.hub.InvalidEvent, actors.hub.RoomForbidden):
        assert issubclass(error, actors.hub.HubError)


def test_the_hub_is_a_publisher():
    assert isinstance(actors.hub.Hub(), actors.hub.Publisher)
