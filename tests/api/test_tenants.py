"""Tenants, users and agent tokens over HTTP; validation names the field; tenants never see each other."""

from __future__ import annotations

import jwt

from .conftest import JWT_SECRET


async def test_tenants_users_and_tokens(api_server) -> None:
    admin = api_server.admin
    created = await admin.post("/tenants", json={"id": "acme", "name": "Acme"})
    assert created.status_code == 201 and created.json()["name"] == "Acme"
    assert [t["id"] for t in (await admin.get("/tenants")).json()] == ["acme"]
    assert (await admin.get("/tenants/acme")).json()["id"] == "acme"

    user = await admin.post("/tenants/acme/users", json={"email": "ana@acme.test", "name": "Ana"})
    assert user.status_code == 201 and user.json()["role"] == "agent"
    duplicate = await admin.post("/tenants/acme/users", json={"email": "ana@acme.test", "name": "Ana 2"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["field"] == "email"
    assert [u["email"] for u in (await admin.get("/tenants/acme/users")).json()] == ["ana@acme.test"]

    issued = await admin.post("/tenants/acme/tokens", json={"user_id": user.json()["id"], "ttl": 120})
    assert issued.status_code == 201
    body = issued.json()
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims == {"tenant": "acme", "user": user.json()["id"], "role": "agent", "exp": int(body["expires_at"])}
    agent = api_server.client(body["token"])
    assert (await agent.get("/tenants/acme")).status_code == 200


async def test_validation_names_the_field_and_writes_nothing(api_server) -> None:
    admin = api_server.admin
    cases = [
        ("/tenants", {"id": "has space", "name": "x"}, "id"),
        ("/tenants", {"id": "ok", "name": ""}, "name"),
        ("/tenants", {"id": "ok"}, "name"),
        ("/tenants", ["not", "an", "object"], "body"),
    ]
    for path, body, field in cases:
        response = await admin.post(path, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == {"code": "invalid", "message": response.json()["error"]["message"],
                                            "field": field}
    assert (await admin.get("/tenants")).json() == []
    await api_server.tenant("t1")
    bad_role = await admin.post("/tenants/t1/users", json={"email": "a@b.c", "name": "A", "role": "root"})
    assert bad_role.status_code == 400 and bad_role.json()["error"]["field"] == "role"
    no_user = await admin.post("/tenants/t1/tokens", json={"user_id": 999})
    assert no_user.status_code == 404 and no_user.json()["error"]["field"] == "user_id"
    bad_ttl = await admin.post("/tenants/t1/tokens", json={"user_id": 1, "ttl": -1})
    assert bad_ttl.status_code == 400 and bad_ttl.json()["error"]["field"] == "ttl"
    assert (await admin.get("/tenants/t1/users")).json() == []
    missing = await admin.post("/tenants/nope/users", json={"email": "a@b.c", "name": "A"})
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "tenant_id"


async def test_a_token_of_tenant_a_gets_404_for_tenant_b(api_server) -> None:
    await api_server.tenant("a")
    await api_server.tenant("b")
    a_admin = api_server.client(await api_server.agent_token("a", role="admin"))
    b_admin = api_server.client(await api_server.agent_token("b", role="admin"))
    made = await b_admin.post("/tenants/b/sessions", json={"id": "b-session", "name": "B"})
    assert made.status_code == 201
    hook = await b_admin.post("/tenants/b/webhooks", json={"url": "https://hooks.example.com/h", "events": ["*"]})
    assert hook.status_code == 201
    for method, path in [
        ("GET", "/tenants/b"),
        ("GET", "/tenants/b/sessions"),
        ("GET", "/tenants/b/sessions/b-session"),
        ("POST", "/tenants/b/sessions/b-session/connect"),
        ("GET", "/tenants/b/sessions/b-session/qr"),
        ("DELETE", "/tenants/b/sessions/b-session"),
        ("GET", "/tenants/b/webhooks"),
        ("DELETE", f"/tenants/b/webhooks/{hook.json()['id']}"),
        # B's session through A's own tenant path: it does not exist there either.
        ("GET", "/tenants/a/sessions/b-session"),
    ]:
        response = await a_admin.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert "b-session" not in response.text or path.startswith("/tenants/a")
    assert [s["id"] for s in (await b_admin.get("/tenants/b/sessions")).json()] == ["b-session"]
    assert (await a_admin.get("/tenants/a/sessions")).json() == []
