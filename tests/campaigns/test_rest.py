"""Campaigns through the REST API and the CLI, on the real app with a simulated session: a bad
definition is a 400 naming the row and field and writes nothing; a good one runs with progress;
the CLI lists, shows, pauses and resumes it; a banned session pauses the campaign by itself."""

from __future__ import annotations

import trio

from actors.sessions import SessionStatus
from tests.api.conftest import ADMIN_TOKEN, api_server  # noqa: F401 (the fixture)
from tests.api.test_cli_commands import zapvisor

BASE = "/tenants/t1/campaigns"


async def _session(api_server, simulator_control, session_id: str = "s1") -> None:
    await api_server.admin.post("/tenants/t1/sessions", json={"id": session_id, "name": "Promo"})
    await api_server.admin.post(f"/tenants/t1/sessions/{session_id}/connect")
    await simulator_control.scan(session_id)
    await api_server.wait_status(session_id, SessionStatus.CONNECTED)


def _body(**overrides) -> dict:
    return {"name": "promo", "text": "hi {{name}}", "sessions": ["s1"],
            "recipients_csv": "phone,name\n5521900000001,Ana\n5521900000002,Bia\n",
            "pacing": {"delay": [0.02, 0.04]}} | overrides


async def test_bad_definitions_are_refused_naming_row_and_field_and_write_nothing(api_server, simulator_control):
    await api_server.tenant("t1")
    await _session(api_server, simulator_control)
    admin = api_server.admin
    cases = [
        (_body(recipients_csv="phone,name\n5521900000001,Ana\n5521900000002,Bia,extra\n"), 400, "recipients_csv[2]"),
        (_body(recipients_csv="phone,name\n5521900000001,Ana\n,Bia\n"), 400, "recipients_csv[2].phone"),
        (_body(recipients_csv="name\nAna\n"), 400, "recipients_csv[0]"),
        (_body(text="hi {{city}}"), 400, "recipients_csv[1].city"),
        (_body(recipients_csv=None, recipients={"columns": ["phone", "name"], "rows": [["5521900000001", "A"]]},
               text="hi {{city}}"), 400, "recipients.rows[0].city"),
        (_body(recipients_csv=None, recipients={"columns": ["phone", "name"], "rows": [["5521900000001"]]}), 400,
         "recipients.rows[0]"),
        (_body(recipients_csv=None, recipients={"columns": ["tel"], "rows": [["5521900000001"]]}), 400,
         "recipients.columns"),
        (_body(recipients_csv=None), 400, "recipients"),
        (_body(sessions=["nope"]), 404, "sessions[0]"),
        (_body(schedule={"timezone": "Mars/Olympus"}), 400, "schedule.timezone"),
        (_body(schedule={"hours": [20, 8]}), 400, "schedule.hours"),
        (_body(pacing={"delay": [5, 1]}), 400, "pacing.delay"),
        (_body(pacing={"daily_cap": 0}), 400, "pacing.daily_cap"),
    ]
    for body, status, field in cases:
        reply = await admin.post(BASE, json={k: v for k, v in body.items() if v is not None})
        assert (reply.status_code, reply.json()["error"].get("field")) == (status, field), (body, reply.text)
    assert (await admin.get(BASE)).json() == []  # nothing half-written
    assert await api_server.node.store.list_campaigns("t1") == []


async def test_a_campaign_over_rest_and_the_cli(api_server, simulator_control):
    await api_server.tenant("t1")
    await _session(api_server, simulator_control)
    csv = "phone,name\n" + "".join(f"55219000{i:05d},n{i}\n" for i in range(30)) + "oops,x\n"
    created = await api_server.admin.post(BASE, json=_body(recipients_csv=csv, pacing={"delay": [0.2, 0.3]}))
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["status"], campaign["total"], campaign["counts"]["skipped:invalid_number"]) == ("draft", 31, 1)
    remote = ("--url", api_server.url, "--token", ADMIN_TOKEN)
    started = await api_server.admin.post(f"{BASE}/{campaign['id']}/start")
    assert started.json()["status"] == "running"
    with trio.fail_after(30):
        while len(await simulator_control.sent("s1")) < 2:
            await trio.sleep(0.05)
    paused = await zapvisor("campaigns", "pause", *remote, "--tenant", "t1", str(campaign["id"]))
    assert paused.returncode == 0 and b"paused" in paused.stdout, paused.stderr
    listed = await zapvisor("campaigns", "list", *remote)
    line = listed.stdout.decode()
    assert listed.returncode == 0 and "t1/promo" in line and "paused" in line and "[#" in line
    again = await api_server.admin.post(f"{BASE}/{campaign['id']}/pause")
    assert again.status_code == 409 and again.json()["error"]["field"] == "campaign_id"
    resumed = await zapvisor("campaigns", "resume", *remote, "--tenant", "t1", str(campaign["id"]))
    assert resumed.returncode == 0 and b"running" in resumed.stdout, resumed.stderr
    with trio.fail_after(60):
        while (await api_server.admin.get(f"{BASE}/{campaign['id']}")).json()["status"] != "finished":
            await trio.sleep(0.1)
    shown = await zapvisor("campaigns", "show", *remote, "--tenant", "t1", str(campaign["id"]))
    assert shown.returncode == 0 and "finished" in shown.stdout.decode() and "sent 30" in shown.stdout.decode()
    page = (await api_server.admin.get(f"{BASE}/{campaign['id']}/recipients", params={"state": "sent"})).json()
    assert len(page["recipients"]) == 30 and {r["session_id"] for r in page["recipients"]} == {"s1"}
    missing = await zapvisor("campaigns", "show", *remote, "--tenant", "t1", "999")
    assert missing.returncode == 1 and b"404" in missing.stderr and b"campaign_id" in missing.stderr


async def test_a_banned_session_pauses_its_campaign(api_server, simulator_control):
    await api_server.tenant("t1")
    await _session(api_server, simulator_control)
    csv = "phone,name\n" + "".join(f"55219100{i:05d},n{i}\n" for i in range(200)) + ""
    created = await api_server.admin.post(BASE, json=_body(recipients_csv=csv, start=True))
    campaign_id = created.json()["id"]
    with trio.fail_after(30):
        while len(await simulator_control.sent("s1")) < 3:
            await trio.sleep(0.05)
    await simulator_control.ban("s1", seconds=3600)
    with trio.fail_after(30):
        while (campaign := (await api_server.admin.get(f"{BASE}/{campaign_id}")).json())["status"] != "paused":
            await trio.sleep(0.1)
    assert "s1" in campaign["reason"] and "banned" in campaign["reason"]
    assert campaign["counts"]["pending"] > 0
