"""Presence over a real node and the simulator: online while connected, subscriptions to the
contacts of active tickets and to each writer, ``presence.updated`` to agents, and "typing..."
(composing, then paused) around an agent's reply — all following the session's options."""

from __future__ import annotations

from actors.outbox import Send
from actors.sessions import SessionOptions

from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

TYPING = 0.3


async def test_presence_follows_the_sessions_options(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, recorder):
        options = SessionOptions(available=True, subscribe_presence=True, typing_seconds=TYPING)
        await node.store.set_session_options("desk", options.to_json())
        await provision(node, simulator_control, "desk")
        await provision(node, simulator_control, "quiet")  # default options: no presence at all
        for session in ("desk", "quiet"):
            await simulator_control.send_message(session, "hello", sender=contact(1))

        async def subscribed():
            ops = await simulator_control.presence_sent("desk")
            return {"op": "subscribe_presence", "jid": contact(1)} in [
                {k: v for k, v in op.items() if k in ("op", "jid")} for op in ops]

        await eventually(subscribed)
        ops = await simulator_control.presence_sent("desk")
        assert {k: ops[0][k] for k in ("op", "state")} == {"op": "presence", "state": "available"}

        # a contact's typing reaches the agents
        await simulator_control.presence("desk", contact(1), "composing", chat=contact(1))

        async def forwarded():
            return [p for p in recorder.of("presence.updated") if p["state"] == "composing"]

        [typing] = await eventually(forwarded)
        assert (typing["session_id"], typing["jid"], typing["chat"]) == ("desk", contact(1), contact(1))

        # an agent's reply: "typing..." first, for the session's typing_seconds, then cleared
        outbox = node.system.ref("/services/outbox")
        for session in ("desk", "quiet"):
            await outbox.ask(Send("acme", session, f"reply-{session}", contact(1), "hi there"))

        async def both_sent():
            return all([await simulator_control.sent(s) for s in ("desk", "quiet")])

        await eventually(both_sent)

        async def paused():
            return len([op for op in await simulator_control.presence_sent("desk") if op["op"] == "chat_state"]) == 2

        await eventually(paused)
        states = [op for op in await simulator_control.presence_sent("desk") if op["op"] == "chat_state"]
        assert [(op["chat"], op["state"]) for op in states] == [(contact(1), "composing"), (contact(1), "paused")]
        [sent] = await simulator_control.sent("desk")
        assert states[0]["ts"] + TYPING * 0.9 <= sent["ts"] <= states[1]["ts"]
        assert await simulator_control.presence_sent("quiet") == []
