"""The session actor against the real simulator over real sockets: each reaction of DESIGN §4."""

from __future__ import annotations

import attrs
import trio

from tests.fixtures.simulator import journaled_ids
from actors.sessions import GetStatus, PairPhone, RequestFailed, SessionStatus
from supervisor import CircuitBreaker

from .conftest import FAST_POLICY, SessionNode, open_session_node


async def pair_new(node: SessionNode, control, session_id: str) -> None:
    """Start a session for a fresh account and scan its first QR code."""
    await node.add(session_id)
    await node.wait_status(session_id, SessionStatus.QR)
    await control.scan(session_id)
    await node.wait_status(session_id, SessionStatus.CONNECTED)


async def test_qr_then_scan_connects_and_inbound_is_stored_before_ack(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    ids = [await simulator_control.send_message("s1", f"hello {i}") for i in range(20)]
    journal_dir = session_node.deps.driver_factory.keywords["config"].journal_dir
    with trio.fail_after(15):  # every message stored, then acked: released from the driver's journal
        while len(session_node.inbound.stored) < 20 or journaled_ids(journal_dir, "s1"):
            await trio.sleep(0.02)
    assert sorted(mid for _, mid in session_node.inbound.stored) == sorted(ids)
    assert session_node.inbound.deliveries == 20
    info = await session_node.system.ref("/tenants/t1/sessions/s1").ask(GetStatus())
    assert info.status is SessionStatus.CONNECTED and info.jid


async def test_qr_limit_reached_needs_auth_and_is_not_restarted(simulated_driver_config):
    """zapvisor's own limit (2 here) fires before the server's QR timeout (3 codes)."""
    policy = attrs.evolve(FAST_POLICY, qr_limit=2)
    async with open_session_node(simulated_driver_config, policy=policy) as node:
        await node.add("s1")
        info = await node.wait_status("s1", SessionStatus.NEEDS_AUTH, timeout=20)
        assert info.reason == "QR limit reached (2 codes not scanned)"
        await trio.sleep(0.3)
        await node.wait_actor_state("s1", "stopped")
        assert node.system.tree().find("/tenants/t1/sessions/s1").restarts == 0


async def test_qr_timeout_408_from_whatsapp_needs_auth(session_node):
    await session_node.add("s1")
    info = await session_node.wait_status("s1", SessionStatus.NEEDS_AUTH, timeout=20)
    assert info.reason.startswith("408 needs_auth")
    await trio.sleep(0.3)
    await session_node.wait_actor_state("s1", "stopped")


async def test_pairing_code_flow(session_node, simulator_control):
    ref = await session_node.add("s1")
    await session_node.wait_status("s1", SessionStatus.QR)
    code = await ref.ask(PairPhone("5511999990000"))
    assert isinstance(code, str) and code
    info = await session_node.wait_status("s1", SessionStatus.PAIRING)
    assert info.pairing_code == code
    await simulator_control.confirm_pairing("s1", code)
    await session_node.wait_status("s1", SessionStatus.CONNECTED)


async def test_pair_phone_without_connection_is_a_value_not_a_crash(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    ref = session_node.system.ref("/tenants/t1/sessions/s1")
    result = await ref.ask(PairPhone("5511999990000"))
    assert isinstance(result, RequestFailed)
    assert session_node.system.tree().find("/tenants/t1/sessions/s1").restarts == 0


async def test_logged_out_401_stops_for_good(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    await simulator_control.logout("s1")
    info = await session_node.wait_status("s1", SessionStatus.LOGGED_OUT)
    assert info.reason.startswith("401")
    await trio.sleep(0.5)
    await session_node.wait_actor_state("s1", "stopped")


async def test_banned_403_and_406_and_outdated_405_stop_for_good(session_node, simulator_control):
    for sid, code, status in (("s403", 403, SessionStatus.BANNED), ("s406", 406, SessionStatus.BANNED),
                              ("s405", 405, SessionStatus.OUTDATED), ("s411", 411, SessionStatus.STOPPED)):
        await pair_new(session_node, simulator_control, sid)
        await simulator_control.disconnect(code, sid)
        info = await session_node.wait_status(sid, status, where=lambda i, c=code: i.reason.startswith(str(c)))
        assert info.reason.startswith(str(code))
    await trio.sleep(0.5)
    for sid in ("s403", "s406", "s405", "s411"):
        await session_node.wait_actor_state(sid, "stopped")


async def test_transient_codes_reconnect_with_backoff(simulated_driver_config, simulator_control):
    breaker = CircuitBreaker(threshold=5, window=60.0, cooldown=2.0)  # three failures must not open it
    async with open_session_node(simulated_driver_config, breaker=breaker) as node:
        await pair_new(node, simulator_control, "s1")
        for restarts, code in enumerate((428, 500, 503), start=1):
            statuses = []
            with node.board.subscribe() as changes:
                await simulator_control.disconnect(code, "s1")
                with trio.fail_after(15):
                    async for info in changes:
                        statuses.append(info.status)
                        if info.status is SessionStatus.CONNECTED:
                            break
            assert statuses[:2] == [SessionStatus.DISCONNECTED, SessionStatus.BACKOFF], statuses
            assert node.system.tree().find("/tenants/t1/sessions/s1").restarts == restarts


async def test_restart_required_515_reconnects_in_place_without_failure(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    connects_before = (await simulator_control.stats()).connects
    await simulator_control.disconnect(515, "s1")
    with trio.fail_after(10):
        while (await simulator_control.stats()).connects == connects_before:
            await trio.sleep(0.02)
    await session_node.wait_status("s1", SessionStatus.CONNECTED)
    snapshot = session_node.system.tree().find("/tenants/t1/sessions/s1")
    assert snapshot.restarts == 0 and snapshot.last_failure is None
    assert snapshot.breaker == "closed"


async def test_replaced_440_is_never_fought(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    connects_before = (await simulator_control.stats()).connects
    await simulator_control.replace("s1")
    await session_node.wait_status("s1", SessionStatus.REPLACED)
    await trio.sleep(1.0)  # several backoff periods: nothing may reconnect
    await session_node.wait_actor_state("s1", "stopped")
    assert (await simulator_control.stats()).connects == connects_before


async def test_temporary_ban_402_resumes_after_expiry(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    expires = await simulator_control.ban("s1", seconds=1.5)
    info = await session_node.wait_status("s1", SessionStatus.BANNED)
    assert info.until is not None and abs(info.until - expires) < 1.0
    await session_node.wait_actor_state("s1", "backoff")
    await session_node.wait_status("s1", SessionStatus.CONNECTED, timeout=15)
    assert session_node.system.tree().find("/tenants/t1/sessions/s1").breaker == "closed"


async def test_stalled_connection_is_degraded_then_restarted_within_bound(session_node, simulator_control):
    """Connected but dead: the simulator stops answering. Bound: one probe interval (0.5 s),
    two probe timeouts (0.5 s each) and the re-probe delay (0.3 s), plus scheduling slack."""
    await pair_new(session_node, simulator_control, "s1")
    bound = FAST_POLICY.probe_interval[1] + 2 * FAST_POLICY.probe_timeout + FAST_POLICY.probe_interval[0]
    start = trio.current_time()
    await simulator_control.stall("s1")
    await session_node.wait_status("s1", SessionStatus.DEGRADED, timeout=10)
    await session_node.wait_status("s1", SessionStatus.DISCONNECTED, SessionStatus.BACKOFF, timeout=10)
    detected = trio.current_time() - start
    assert detected <= bound + 2.0, (detected, bound)
    await simulator_control.stall("s1", on=False)
    await session_node.wait_status("s1", SessionStatus.CONNECTED, timeout=15)
    snapshot = session_node.system.tree().find("/tenants/t1/sessions/s1")
    assert snapshot.restarts >= 1 and snapshot.last_failure.type == "ConnectionDead"


async def test_flapping_session_opens_its_breaker_and_siblings_are_untouched(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "good")
    await pair_new(session_node, simulator_control, "flappy")
    for _ in range(3):  # breaker threshold is 3 in the test node
        await session_node.wait_status("flappy", SessionStatus.CONNECTED)
        await simulator_control.disconnect(500, "flappy")
        await session_node.wait_status("flappy", SessionStatus.BACKOFF, SessionStatus.FAILED)
    info = await session_node.wait_status("flappy", SessionStatus.FAILED)
    assert info.reason == "circuit breaker open"
    tree = session_node.system.tree()
    assert tree.find("/tenants/t1/sessions/flappy").state == "suspended"
    assert tree.find("/tenants/t1/sessions/good").state == "running"
    assert tree.find("/tenants/t1/sessions/good").restarts == 0
    assert session_node.status("good").status is SessionStatus.CONNECTED
    # After the cooldown (2 s) one half-open trial reconnects it.
    await session_node.wait_status("flappy", SessionStatus.CONNECTED, timeout=15)


async def test_pool_limit_queues_and_drains_in_order(simulated_driver_config, simulator_control):
    async with open_session_node(simulated_driver_config, max_sessions=2) as node:
        for sid in ("a", "b"):
            await pair_new(node, simulator_control, sid)
        for sid in ("c", "d", "e"):
            await node.add(sid)
            await node.wait_status(sid, SessionStatus.QUEUED)
        stats = node.deps.pool.statistics()
        assert (stats.active, stats.max_sessions, stats.waiting, stats.utilisation) == (2, 2, 3, 1.0)
        assert stats.waiting_ids == ("c", "d", "e")
        order = []
        for freed in ("a", "b", "c", "d"):
            await node.sessions.terminate_child(freed)
            with trio.fail_after(10):
                while True:
                    started = [s for s in ("c", "d", "e") if s not in order and s in node.deps.pool.statistics().active_ids]
                    if started:
                        order.extend(started)
                        break
                    await trio.sleep(0.01)
            if len(order) == 3:
                break
        assert order == ["c", "d", "e"]


async def test_simulator_killed_and_restarted_every_session_comes_back(session_node, simulator, simulator_control):
    ids = [f"s{i}" for i in range(5)]
    for sid in ids:
        await pair_new(session_node, simulator_control, sid)
    await simulator_control.flush()
    await simulator.restart(down_for=1.0)
    for sid in ids:
        await session_node.wait_status(sid, SessionStatus.CONNECTED, timeout=30)


async def test_caches_stay_bounded_through_a_session_whatever_the_contacts(simulated_driver_config, simulator_control):
    """Messages and presences from 500 distinct contacts through one session (limits 30/20/10)."""
    from actors.sessions import CacheLimits, GetCacheSizes

    async with open_session_node(simulated_driver_config) as node:
        node.deps.cache_limits = CacheLimits(chats=20, contacts=30, messages=10)
        await pair_new(node, simulator_control, "s1")
        for i in range(200):
            sender = f"55119{i:08d}@s.whatsapp.net"
            await simulator_control.send_message("s1", f"oi {i}", sender=sender)
        for i in range(300):
            await simulator_control.presence("s1", f"55118{i:08d}@s.whatsapp.net", "available")
        with trio.fail_after(30):
            while len(node.inbound.stored) < 200:
                await trio.sleep(0.05)
        sizes = await node.system.ref("/tenants/t1/sessions/s1").ask(GetCacheSizes())
        assert sizes == {"chats": 20, "contacts": 30, "messages": 10}
        assert len(node.inbound.stored) == 200
