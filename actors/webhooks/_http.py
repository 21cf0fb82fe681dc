"""POSTing a body to a URL: the one network call of the webhooks service.

A :data:`Poster` is ``async (url, body, headers) -> HTTP status``; :class:`HttpPoster` is the
real one (httpx, which runs on trio through anyio). A transport failure (refused, reset, TLS,
timeout) raises :class:`PostFailed` (worth a retry); a target its :class:`~._targets.TargetPolicy`
refuses raises :class:`~._targets.UnsafeTarget` (the delivery's own content: the service
quarantines it at once). Any HTTP answer is a status, the caller judges it (a redirect is never
followed).
"""

from __future__ import annotations

from typing import Awaitable, Callable, Mapping

import attrs
import httpx

from ._errors import WebhookError
from ._targets import TargetPolicy, UnsafeTarget

Poster = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]


class PostFailed(WebhookError, ConnectionError):
    """The request did not get an HTTP answer (the message says why)."""


@attrs.define(eq=False)
class HttpPoster:
    """POSTs with one pooled httpx client; use as ``async with HttpPoster(timeout, targets) as post``.

    Each POST resolves the URL through ``targets`` and connects to the address it checked
    (``Host`` and TLS SNI keep the URL's name), so DNS rebinding cannot reach what it refuses.

    Cancellation: a cancelled post is abandoned (the receiver may or may not have seen it: a
    retried delivery carries the same ``X-Zapvisor-Delivery`` id so receivers can dedupe).
    """

    timeout: float
    targets: TargetPolicy = attrs.field(factory=TargetPolicy)
    _client: httpx.AsyncClient | None = attrs.field(init=False, default=None)

    async def __aenter__(self) -> HttpPoster:
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            host, address = await self.targets.resolve(url)
        except UnsafeTarget as refused:  # the delivery's own content: the service quarantines it
            raise UnsafeTarget(f"refused target: {refused}") from None
        except OSError as error:
            raise PostFailed(f"cannot resolve the URL's host: {error}") from None
        target = httpx.URL(url)
        pinned = target.copy_with(host=str(address))
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        try:
            response = await self._client.post(pinned, content=body, headers={**headers, "Host": target.netloc.decode()},
                                               extensions=extensions)
        except httpx.HTTPError as error:
            raise PostFailed(f"{type(error).__name__}: {error}") from None
        return response.status_code
