"""The session manager over a real node: lifecycle as messages, refusals as values, restore on boot."""

from __future__ import annotations

import trio

from actors.node import (
    CreateSession,
    DeleteSession,
    ListSessions,
    LogoutSession,
    Refused,
    RestartSession,
    StartSession,
    StopSession,
    open_node,
)
from actors.sessions import SessionStatus
from actors.store import SessionRecord


from .conftest import wait_status


async def create_and_pair(node, control, session_id: str, tenant: str = "acme") -> None:
    record = await node.manager.ask(CreateSession(tenant, session_id, f"desk {session_id}"))
    assert isinstance(record, SessionRecord) and record.status == "stopped"
    await node.manager.ask(StartSession(session_id))
    await wait_status(node, session_id, SessionStatus.QR)
    await control.scan(session_id)
    await wait_status(node, session_id, SessionStatus.CONNECTED)


async def test_create_start_and_inbound_lands_in_the_store(settings, simulator_control):
    async with open_node(settings) as node:
        await node.store.upsert_tenant("acme", "Acme")
        await create_and_pair(node, simulator_control, "s1")
        ids = [await simulator_control.send_message("s1", f"oi {i}", sender="5511900000001@s.whatsapp.net")
               for i in range(5)]
        with trio.fail_after(10):
            while await node.store.count_messages("s1") < 5:
                await trio.sleep(0.02)
        tickets = await node.store.list_tickets("acme")
        assert len(tickets) == 1
        assert [m.wa_id for m in await node.store.list_messages(tickets[0].id)] == ids
        listed = await node.manager.ask(ListSessions("acme"))
        assert [i.session_id for i in listed] == ["s1"]


async def test_refusals_are_values_naming_the_field(settings):
    async with open_node(settings) as node:
        refused = await node.manager.ask(CreateSession("nobody", "s1", "x"))
        assert refused == Refused("not_found", "no tenant 'nobody'", "tenant_id")
        await node.store.upsert_tenant("acme", "Acme")
        await node.store.upsert_tenant("other", "Other")
        await node.manager.ask(CreateSession("acme", "s1", "x"))
        taken = await node.manager.ask(CreateSession("other", "s1", "y"))
        assert (taken.code, taken.field) == ("conflict", "session_id")
        for request in (StartSession("nope"), StopSession("nope"), RestartSession("nope"),
                        LogoutSession("nope"), DeleteSession("nope")):
            result = await node.manager.ask(request)
            assert (result.code, result.field) == ("not_found", "session_id"), request
        not_running = await node.manager.ask(LogoutSession("s1"))
        assert not_running.code == "not_running"
        assert node.system.tree().find("/services/sessions").restarts == 0


async def test_live_sessions_are_restored_at_boot_and_stopped_ones_are_not(settings, simulator_control):
    async with open_node(settings) as node:
        await node.store.upsert_tenant("acme", "Acme")
        await create_and_pair(node, simulator_control, "live")
        await create_and_pair(node, simulator_control, "parked")
        stopped = await node.manager.ask(StopSession("parked"))
        assert stopped.status is SessionStatus.STOPPED
        await trio.sleep(0.2)  # past the status debounce
    async with open_node(settings) as node:
        await wait_status(node, "live", SessionStatus.CONNECTED)
        await trio.sleep(0.5)
        assert node.board.get("parked") is None  # the board holds what runs here; the row says why not
        assert (await node.store.get_session("parked")).status == "stopped"
        assert node.local == {"live"}
        assert node.system.tree().find("/tenants/acme/sessions/parked") is None


async def test_restart_and_delete(settings, simulator_control):
    async with open_node(settings) as node:
        await node.store.upsert_tenant("acme", "Acme")
        await create_and_pair(node, simulator_control, "s1")
        connects = (await simulator_control.stats()).connects
        await node.manager.ask(RestartSession("s1"))
        await wait_status(node, "s1", SessionStatus.CONNECTED)
        assert (await simulator_control.stats()).connects == connects + 1
        assert await node.manager.ask(DeleteSession("s1")) is None
        assert node.board.get("s1") is None
        assert node.system.tree().find("/tenants/acme/sessions/s1") is None
        assert (await node.store.get_session("s1")).status == "deleted"
        account = await simulator_control.account("s1")
        assert not account["paired"]  # delete logged out first: no credentials left behind
        again = await node.manager.ask(StartSession("s1"))
        assert again.code == "not_found"


async def test_a_start_request_is_durable_at_once_for_restore(settings, simulator_control):
    """The debounce must not decide restores: a session started just before a crash comes back."""
    import attrs

    slow = attrs.evolve(settings, sessions=attrs.evolve(settings.sessions, status_debounce=3600.0))
    async with open_node(slow) as node:
        await node.store.upsert_tenant("acme", "Acme")
        await node.manager.ask(CreateSession("acme", "s1", "desk"))
        await node.manager.ask(StartSession("s1"))
        assert (await node.store.get_session("s1")).status == "starting"
        await node.manager.ask(CreateSession("acme", "s2", "desk"))
        await node.manager.ask(StartSession("s2"))
        await node.manager.ask(StopSession("s2"))
        assert (await node.store.get_session("s2")).status == "stopped"


async def test_logout_of_a_session_whose_actor_is_not_running_is_refused(settings, simulator_control):
    async with open_node(settings) as node:
        await node.store.upsert_tenant("acme", "Acme")
        await create_and_pair(node, simulator_control, "s1")
        await node.system.supervisor("/tenants/acme/sessions").terminate_child("s1")  # spec kept, not running
        refused = await node.manager.ask(LogoutSession("s1"))
        assert refused.code == "not_running"
        assert node.system.tree().find("/services/sessions").restarts == 0
