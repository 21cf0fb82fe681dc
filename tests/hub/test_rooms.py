import pytest

from actors.hub import InvalidRoom, Room, RoomForbidden, resolve


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("tenant:acme", "acme/tenant:acme"),
        ("ticket:42", "acme/ticket:42"),
        ("status:connected", "acme/status:connected"),
        ("notifications", "acme/notifications"),
    ],
)
def test_an_agent_names_rooms_inside_its_own_tenant(name, key):
    room = resolve(name, tenant_id="acme", role="agent")
    assert room.key == key
    assert room.name == name
    assert Room.from_key(room.key) == room


def test_two_tenants_asking_for_the_same_ticket_get_different_rooms():
    a = resolve("ticket:7", tenant_id="a", role="agent")
    b = resolve("ticket:7", tenant_id="b", role="agent")
    assert a.name == b.name and a.key != b.key


def test_another_tenants_room_is_forbidden():
    with pytest.raises(RoomForbidden, match="room"):
        resolve("tenant:other", tenant_id="acme", role="admin")


def test_supervision_is_for_admins_and_scoped_to_their_tenant():
    with pytest.raises(RoomForbidden, match="admins"):
        resolve("supervision", tenant_id="acme", role="agent")
    assert resolve("supervision", tenant_id="acme", role="admin").key == "acme/supervision"
    assert resolve("supervision", tenant_id="", role="admin").key == "supervision"


def test_the_node_admin_joins_any_tenant_room_but_no_tenant_scoped_room():
    assert resolve("tenant:zeta", tenant_id="", role="admin") == Room.tenant("zeta")
    with pytest.raises(RoomForbidden, match="node admin"):
        resolve("ticket:1", tenant_id="", role="admin")


@pytest.mark.parametrize("name", ["", "lobby", "tenant:", "ticket:a/b", "notifications:x", "supervision:y", 5, None,
                                  "status:" + "x" * 200])
def test_malformed_names_are_refused_naming_the_field(name):
    with pytest.raises(InvalidRoom, match="room"):
        resolve(name, tenant_id="acme", role="admin")


@pytest.mark.parametrize("key", ["ticket:1", "acme/lobby", "acme/notifications:x", "a/b/tenant:c"])
def test_malformed_keys_are_refused(key):
    with pytest.raises(InvalidRoom):
        Room.from_key(key)


def test_tenant_and_ticket_rooms_are_memoised():
    assert Room.tenant("acme") is Room.tenant("acme")
    assert Room.ticket("acme", 42) is Room.ticket("acme", "42")  # one room whatever the id's type
    assert Room.ticket("acme", 42) is not Room.ticket("zeta", 42)
    assert (Room.ticket("acme", 42).key, Room.tenant("acme").key) == ("acme/ticket:42", "acme/tenant:acme")


@pytest.mark.parametrize("make", [
    lambda: Room.tenant(""),
    lambda: Room.tenant("a/b"),
    lambda: Room.tenant(5),
    lambda: Room.tenant(None),
    lambda: Room.tenant(["acme"]),  # unhashable: must not reach the memo as a TypeError
    lambda: Room.ticket("acme", "a/b"),
    lambda: Room.ticket("a b", 1),
    lambda: Room.ticket(5, 1),
])
def test_memoised_rooms_still_refuse_invalid_ids(make):
    for _ in range(2):  # a refusal is not remembered as a room
        with pytest.raises(InvalidRoom):
            make()
