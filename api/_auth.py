"""Who is calling: the admin token and agent JWTs (HS256), issued and verified here.

Two kinds of callers reach the API (issue 6 §1):

- the **admin**, with the static ``api.admin_token`` from the settings, sent as
  ``Authorization: Bearer <token>``: every endpoint, every tenant;
- **agents** (and tenant admins), with a JWT signed with ``api.jwt_secret``
  carrying ``tenant``, ``user``, ``role`` and ``exp``: only their tenant's resources.

:class:`Authority` is the one place that knows the secrets; it is a plain value,
shared by the REST app and the websocket (``api._ws`` calls :meth:`Authority.verify`).
Tokens are compared in constant time; nothing here logs a token.
"""

from __future__ import annotations

import datetime
import hmac
from typing import Callable

import attrs
import jwt

from ._errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
"""Symmetric signing: the daemon both issues and verifies, so one shared secret suffices."""

ROLES = ("agent", "admin")
"""JWT roles, the same as the store's user roles: ``admin`` may manage its tenant's sessions."""

ADMIN = "admin"

NOT_VALID = "admin token or JWT not valid"
"""How every refused token starts: the caller may have meant either kind."""

NO_SECRETS = ("the API is closed: this daemon has no admin token and no JWT secret; "
              "set api.admin_token (ZAPVISOR_API__ADMIN_TOKEN) and restart it")


def _in_words(error: jwt.PyJWTError) -> str:
    """Why PyJWT refused a token, said for a person holding the token (not the library's text)."""
    match error:
        case jwt.InvalidSignatureError():
            return "it is signed with another secret (a token of another daemon?)"
        case jwt.MissingRequiredClaimError():
            return f"it lacks the {error.claim!r} claim (not a token this daemon issued)"
        case jwt.InvalidAlgorithmError():
            return f"it is not signed with {ALGORITHM}"
        case jwt.DecodeError():
            return "it is neither the admin token nor a JWT (mistyped or truncated?)"
    return "it could not be verified"


@attrs.frozen
class Principal:
    """The authenticated caller. ``tenant`` is None only for the node admin (admin token)."""

    kind: str  # "admin" (the admin token) | "agent" (a JWT)
    tenant: str | None = None
    user: int | None = None
    role: str = ADMIN
    expires: float | None = None

    @property
    def is_admin(self) -> bool:
        """The node admin: every tenant, the supervision tree, the queues."""
        return self.kind == ADMIN

    @property
    def manages_tenant(self) -> bool:
        """May act on its tenant's sessions (the node admin, or a JWT with role ``admin``)."""
        return self.is_admin or self.role == ADMIN

    def sees(self, tenant_id: str) -> bool:
        """Whether resources of ``tenant_id`` exist for this caller (else they answer 404)."""
        return self.is_admin or self.tenant == tenant_id

    @property
    def name(self) -> str:
        """For the audit table: ``admin`` or ``user:<id>@<tenant>``."""
        return ADMIN if self.is_admin else f"user:{self.user}@{self.tenant}"


@attrs.frozen
class Authority:
    """Verifies callers and issues agent tokens.

    ``clock`` returns Unix time (JWT ``exp`` is wall-clock by definition); the app
    passes ``ActorSystem.wall_time`` over trio's clock so tests can move it.
    ``admin_token`` or ``jwt_secret`` None disables that kind of caller (every
    such request is 401), so a daemon without secrets is closed, never open.
    """

    admin_token: str | None
    jwt_secret: str | None
    ttl: float
    clock: Callable[[], float]

    def authenticate(self, header: str | None) -> Principal:
        """The caller behind an ``Authorization`` header value.

        Raises:
            Unauthorized: no bearer token, or a token that is neither the admin token nor a
                valid, unexpired JWT signed with our secret.
        """
        if self.admin_token is None and self.jwt_secret is None:
            raise Unauthorized(NO_SECRETS, "Authorization")
        if not header or not header.startswith("Bearer "):
            raise Unauthorized("send Authorization: Bearer <admin token or agent JWT>", "Authorization")
        token = header.removeprefix("Bearer ").strip()
        if self.admin_token is not None and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return Principal(ADMIN)
        if self.jwt_secret is None:
            raise Unauthorized("admin token not valid (agent JWTs are disabled: api.jwt_secret is not set)",
                               "Authorization")
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """Decode an agent JWT (signature, ``exp``, required claims).

        Raises:
            Unauthorized: forged, malformed, expired, or missing a claim; the message says which in
                the caller's words, never the JWT library's.
        """
        if self.jwt_secret is None:
            raise Unauthorized("agent tokens are disabled (api.jwt_secret is not set)", "Authorization")
        try:
            claims = jwt.decode(
                token, self.jwt_secret, algorithms=[ALGORITHM],
                options={"require": ["exp", "tenant", "user", "role"], "verify_exp": False},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"{NOT_VALID}: {_in_words(error)}", "Authorization") from None
        exp = claims["exp"]
        if not isinstance(exp, (int, float)):
            raise Unauthorized(f"{NOT_VALID}: its expiry (exp) is not a time", "Authorization")
        if exp <= self.clock():
            when = datetime.datetime.fromtimestamp(exp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            raise Unauthorized(f"token expired at {when}: ask for a new one", "Authorization")
        tenant, user, role = claims["tenant"], claims["user"], claims["role"]
        if not isinstance(tenant, str) or not tenant or not isinstance(user, int) or role not in ROLES:
            raise Unauthorized(f"{NOT_VALID}: its tenant, user or role is malformed", "Authorization")
        return Principal("agent", tenant, user, role, float(claims["exp"]))

    def issue(self, tenant: str, user: int, role: str = "agent", ttl: float | None = None) -> tuple[str, float]:
        """A signed agent JWT and its expiry (Unix time). ``ttl`` defaults to ``api.jwt_ttl``.

        Raises:
            Forbidden: agent tokens are disabled (no ``jwt_secret``).
        """
        if self.jwt_secret is None:
            raise Forbidden("agent tokens are disabled (api.jwt_secret is not set)")
        expires = self.clock() + (self.ttl if ttl is None else ttl)
        claims = {"tenant": tenant, "user": user, "role": role, "exp": int(expires)}
        return jwt.encode(claims, self.jwt_secret, algorithm=ALGORITHM), float(int(expires))
