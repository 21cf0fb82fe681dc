"""The admin token and agent JWTs: issue, verify, and refuse forged, expired or malformed tokens."""

from __future__ import annotations

import jwt
import pytest

from api import Authority, Principal, Unauthorized

from .conftest import ADMIN_TOKEN, JWT_SECRET


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def authority(clock: Clock, ttl: float = 600.0) -> Authority:
    return Authority(ADMIN_TOKEN, JWT_SECRET, ttl, clock)


def test_issued_token_verifies_until_it_expires() -> None:
    clock = Clock(1_000_000.0)
    auth = authority(clock, ttl=600.0)
    token, expires = auth.issue("t1", 7, "agent")
    assert expires == clock.now + 600.0
    assert auth.verify(token) == Principal("agent", "t1", 7, "agent", expires)
    clock.now = expires - 1
    assert auth.authenticate(f"Bearer {token}").tenant == "t1"
    clock.now = expires
    with pytest.raises(Unauthorized, match="expired"):
        auth.verify(token)


def test_admin_token_is_the_node_admin() -> None:
    who = authority(Clock(0.0)).authenticate(f"Bearer {ADMIN_TOKEN}")
    assert who.is_admin and who.sees("any-tenant") and who.name == "admin"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", f"Bearer {ADMIN_TOKEN}x"])
def test_missing_or_wrong_credentials_are_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        authority(Clock(0.0)).authenticate(header)
    assert caught.value.field == "Authorization" and caught.value.status == 401


def test_forged_and_malformed_tokens_are_refused() -> None:
    clock = Clock(1_000_000.0)
    auth = authority(clock)
    claims = {"tenant": "t1", "user": 1, "role": "agent", "exp": int(clock.now + 60)}
    forged = jwt.encode(claims, "another-secret-of-32-characters-or-more!", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    missing = jwt.encode({k: v for k, v in claims.items() if k != "tenant"}, JWT_SECRET, algorithm="HS256")
    bad_role = jwt.encode({**claims, "role": "root"}, JWT_SECRET, algorithm="HS256")
    bad_user = jwt.encode({**claims, "user": "1"}, JWT_SECRET, algorithm="HS256")
    for token in (forged, unsigned, missing, bad_role, bad_user, "not.a.jwt"):
        with pytest.raises(Unauthorized):
            auth.verify(token)


def test_agent_scope() -> None:
    agent = Principal("agent", "t1", 3, "agent")
    tenant_admin = Principal("agent", "t1", 4, "admin")
    assert agent.sees("t1") and not agent.sees("t2") and not agent.manages_tenant and not agent.is_admin
    assert tenant_admin.manages_tenant and not tenant_admin.is_admin and tenant_admin.name == "user:4@t1"


def test_without_secrets_nobody_gets_in() -> None:
    closed = Authority(None, None, 60.0, Clock(0.0))
    with pytest.raises(Unauthorized):
        closed.authenticate("Bearer anything-at-all-really")
    with pytest.raises(PermissionError):
        closed.issue("t1", 1)


async def test_http_rejects_expired_and_forged_tokens(api_server) -> None:
    await api_server.tenant("t1")
    now = api_server.node.system.wall_time(__import__("trio").current_time())
    expired = jwt.encode({"tenant": "t1", "user": 1, "role": "admin", "exp": int(now - 5)}, JWT_SECRET,
                         algorithm="HS256")
    forged = jwt.encode({"tenant": "t1", "user": 1, "role": "admin", "exp": int(now + 600)},
                        "x" * 40, algorithm="HS256")
    for token in (expired, forged, None):
        response = await api_server.client(token).get("/tenants/t1/sessions")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.json()["error"]["field"] == "Authorization"


async def test_agents_cannot_use_admin_endpoints(api_server) -> None:
    await api_server.tenant("t1")
    agent = api_server.client(await api_server.agent_token("t1"))
    for method, path in (("GET", "/tenants"), ("GET", "/supervision/tree"), ("GET", "/queues"),
                         ("POST", "/tenants/t1/tokens")):
        response = await agent.request(method, path, json={"user_id": 1})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert (await agent.post("/tenants/t1/sessions", json={"id": "s1", "name": "x"})).status_code == 403


def test_refusals_are_in_the_callers_words() -> None:
    """No library internals ("Not enough segments", codec errors): what is wrong, for a person."""
    clock = Clock(1_000_000.0)
    auth = authority(clock)
    claims = {"tenant": "t1", "user": 1, "role": "agent", "exp": int(clock.now - 5)}
    cases = {
        "mistyped-admin-token": "admin token or JWT not valid: it is neither the admin token nor a JWT",
        "\xb7garbage.\xb7x.y": "admin token or JWT not valid: it is neither the admin token nor a JWT",
        jwt.encode({**claims, "exp": int(clock.now + 60)}, "x" * 40, algorithm="HS256"):
            "admin token or JWT not valid: it is signed with another secret",
        jwt.encode({"tenant": "t1", "user": 1, "exp": int(clock.now + 60)}, JWT_SECRET, algorithm="HS256"):
            "admin token or JWT not valid: it lacks the 'role' claim",
        jwt.encode(claims, JWT_SECRET, algorithm="HS256"): "token expired at 1970-01-12 13:46:35 UTC",
    }
    for token, words in cases.items():
        with pytest.raises(Unauthorized) as caught:
            auth.authenticate(f"Bearer {token}")
        assert str(caught.value).startswith(words), (token, str(caught.value))
    with pytest.raises(Unauthorized, match="no admin token and no JWT secret; set api.admin_token"):
        Authority(None, None, 60.0, clock).authenticate("Bearer x")


async def test_another_tenant_is_named_not_found(api_server) -> None:
    """A token of tenant t1 asking for t2: 404 whether t2 exists or not (it learns nothing), worded."""
    await api_server.tenant("t1")
    await api_server.tenant("t2")
    agent = api_server.client(await api_server.agent_token("t1"))
    for tenant in ("t2", "nowhere"):
        response = await agent.get(f"/tenants/{tenant}/sessions")
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"token for tenant 't1' cannot reach tenant '{tenant}'"
