"""POSTing a body to a URL: the one network call of the webhooks service.

A :data:`Poster` is ``async (url, body, headers) -> HTTP status``; :class:`HttpPoster` is the
real one (httpx, which runs on trio through anyio). A transport failure (refused, reset, TLS,
timeout) raises :class:`PostFailed`; any HTTP answer is a status, the caller judges it.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Mapping

import attrs
import httpx

from ._errors import WebhookError

Poster = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]


class PostFailed(WebhookError, ConnectionError):
    """The request did not get an HTTP answer (the message says why)."""


@attrs.define(eq=False)
class HttpPoster:
    """POSTs with one pooled httpx client; use as ``async with HttpPoster(timeout) as post``.

    Cancellation: a cancelled post is abandoned (the receiver may or may not have seen it: a
    retried delivery carries the same ``X-Zapvisor-Delivery`` id so receivers can dedupe).
    """

    timeout: float
    _client: httpx.AsyncClient | None = attrs.field(init=False, default=None)

    async def __aenter__(self) -> HttpPoster:
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            response = await self._client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as error:
            raise PostFailed(f"{type(error).__name__}: {error}") from None
        return response.status_code
