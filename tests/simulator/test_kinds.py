"""Simulated contacts send every kind and operation: the vocabulary, the checks, the traffic."""

import random

import pytest

from actors.drivers import MessageKind
from actors.drivers._kinds import check_payload
from actors.simulator import ControlError, TrafficSpec
from actors.simulator._kinds import KINDS, SAMPLES
from actors.simulator._traffic import generate_one


def test_the_wire_kinds_are_the_drivers_kinds():
    # every kind a contact sends (a placeholder is zapvisor's, never sent)
    assert set(KINDS) == {kind.value for kind in MessageKind} - {"undecryptable"}
    for kind, (_, payload) in SAMPLES.items():
        check_payload(MessageKind(kind), payload)  # what the simulated driver will accept


def test_traffic_draws_every_kind_and_operates_on_the_previous_message():
    spec = TrafficSpec(contacts=1, group_share=0.0, kinds_share=1.0, operations_share=0.3, seed=5)
    rng, previous = random.Random(spec.seed), {}
    messages = [generate_one(spec, rng, 1.0, previous) for _ in range(300)]
    assert {m["kind"] for m in messages} == set(KINDS) - {"text", "poll_vote"}
    last = None
    for message in messages:
        if message["target_id"] is not None:
            assert message["target_id"] == last  # the chat's previous (non-operation) message
        else:
            last = message["id"]
        assert (message["media"] is not None) == (message["kind"] in {"image", "video", "audio", "ptt", "document",
                                                                       "sticker"})
    plain = TrafficSpec(seed=5)  # without the shares: text and attachments, as before
    assert {generate_one(plain, random.Random(5), 1.0)["kind"] for _ in range(20)} == {"text"}


async def test_bad_kinds_are_refused_by_name(shared_control, session_id):
    await shared_control.create_account(session_id)
    with pytest.raises(ControlError, match="kind must be one of"):
        await shared_control.send_message(session_id, kind="hologram")
    with pytest.raises(ControlError, match="a reaction message needs target_id"):
        await shared_control.send_message(session_id, kind="reaction", payload={"emoji": "👍"})
    with pytest.raises(ControlError, match="payload must be a JSON object"):
        await shared_control.call("send_message", session=session_id, kind="poll", payload=[1])
