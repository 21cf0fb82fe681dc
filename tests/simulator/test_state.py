"""The simulator's durable state: round trip, atomic replacement, group commit, bad files."""

import json

import pytest
import trio
import trio.testing

from actors.simulator import StateFileError
from actors.simulator._state import State, account_jid


async def test_round_trip_keeps_accounts_and_queues(tmp_path):
    path = tmp_path / "simulator.json"
    state = await State.load(path, flush_interval=0.0)
    account = state.account("s1")
    account.creds = "creds-x"
    account.banned_until, account.ban_code = 123.5, 7
    account.queue["m1"] = {"id": "m1", "text": "a"}
    account.queue["m2"] = {"id": "m2", "text": "b"}
    account.events.append({"ev": "receipt"})
    await state.write_now()
    again = await State.load(path, flush_interval=0.0)
    restored = again.accounts["s1"]
    assert (restored.jid, restored.creds, restored.banned_until, restored.ban_code) == (
        account_jid("s1"), "creds-x", 123.5, 7)
    assert list(restored.queue) == ["m1", "m2"] and restored.events == [{"ev": "receipt"}]
    assert not list(tmp_path.glob("*.tmp"))  # written aside, then renamed over


async def test_jids_are_stable_per_session():
    assert account_jid("s1") == account_jid("s1") != account_jid("s2")
    assert account_jid("s1").endswith("@s.whatsapp.net")


async def test_group_commit_batches_changes_and_flush_waits_for_them(tmp_path, autojump_clock):
    path = tmp_path / "simulator.json"
    state = await State.load(path, flush_interval=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        started = trio.current_time()
        for session in ("a", "b", "c"):
            state.account(session)
        await state.flush()
        assert trio.current_time() - started == pytest.approx(0.5)  # one write after the window
        assert set(json.loads(path.read_text())["accounts"]) == {"a", "b", "c"}
        await state.flush()  # nothing new: returns at once
        assert trio.current_time() - started == pytest.approx(0.5)
        nursery.cancel_scope.cancel()


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.parametrize(("text", "match"), [
    ('{"version": 99, "accounts": {}}', "version 99"),
    ("not json", "not a simulator state file"),
    ('{"version": 1, "accounts": {"s1": {"jid": "x"}}}', "not a simulator state file"),
])
async def test_a_bad_state_file_is_refused_with_its_path(tmp_path, text, match):
    path = tmp_path / "simulator.json"
    path.write_text(text)
    with pytest.raises(StateFileError, match=match) as info:
        await State.load(path, flush_interval=0.0)
    assert str(path) in str(info.value)
