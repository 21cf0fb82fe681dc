"""A session's options over HTTP: read the defaults, replace them, refuse bad input by field."""

from __future__ import annotations

from actors.sessions import SessionOptions


async def test_options_default_then_replaced_whole_and_bad_input_named(api_server) -> None:
    await api_server.tenant("t1")
    admin = api_server.client(await api_server.agent_token("t1", role="admin"))
    agent = api_server.client(await api_server.agent_token("t1"))
    await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
    path = "/tenants/t1/sessions/s1/options"
    defaults = {"status_broadcasts": False, "newsletters": False, "reject_calls": False, "call_reply": "",
                "available": False, "typing_seconds": 0.0, "subscribe_presence": False, "history_days": 7,
                "history_chats": 50, "history_groups": False}
    assert (await agent.get(path)).json() == defaults
    put = await admin.put(path, json={"reject_calls": True, "call_reply": "Please write"})
    assert put.status_code == 200 and put.json() == {**defaults, "reject_calls": True, "call_reply": "Please write"}
    stored = SessionOptions.from_json(await api_server.node.store.session_options("s1"))
    assert stored == SessionOptions(reject_calls=True, call_reply="Please write")
    assert (await admin.put(path, json={"newsletters": True})).json() == {**defaults, "newsletters": True}
    for body, field in (({"reject_calls": "yes"}, "reject_calls"), ({"call_reply": "x" * 5000}, "call_reply"),
                        ({"ring": True}, "ring"), ({"typing_seconds": 6}, "typing_seconds"),
                        ({"history_days": -1}, "history_days")):
        bad = await admin.put(path, json=body)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == field, body
    assert (await agent.put(path, json={})).status_code == 403
    assert (await admin.get("/tenants/t1/sessions/nope/options")).status_code == 404
