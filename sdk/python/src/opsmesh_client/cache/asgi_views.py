"""``cache_endpoint``: an async Starlette endpoint's responses in the cache, by the rules
of ``http_views`` (GET/HEAD only, credentials bypass, Vary, the response's Cache-Control,
``Age`` on hits), loaded once across instances through ``AsyncCache.get_or_set``.

    from opsmesh_client.cache.asgi_views import cache_endpoint

    @cache_endpoint(cache, namespace="pages", ttl_s=60, vary=("Accept-Language",))
    async def article(request: Request) -> Response: ...

The endpoint takes a Starlette ``Request`` (first among its arguments, or as a keyword:
a FastAPI endpoint declaring ``request: Request`` qualifies) and returns a ``Response``
with a body; a ``StreamingResponse`` or ``FileResponse`` is passed on and not stored. A
hit is a new ``Response`` with the stored status, headers and body: the original's
background tasks ran once, for the request that loaded it. Starlette is imported when a
request is served, not with the cache.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from opsmesh_client.cache.aio import AsyncCache
from opsmesh_client.cache.base import Loaded
from opsmesh_client.cache.http_views import (
    MAX_BODY_BYTES,
    PASS_TTL_S,
    STORABLE_STATUSES,
    ViewPolicy,
    header_reader,
    is_response,
    matches,
    replay,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

Endpoint = Callable[..., Awaitable["Response"]]


def cache_endpoint(
    cache: AsyncCache,
    *,
    namespace: str = "default",
    ttl_s: float | None = None,
    vary: Iterable[str] = (),
    statuses: Iterable[int] = STORABLE_STATUSES,
    max_body_bytes: int = MAX_BODY_BYTES,
    allow_authorization: bool = False,
    allow_cookies: bool = False,
    pass_ttl_s: float = PASS_TTL_S,
) -> Callable[[Endpoint], Endpoint]:
    """Cache an async endpoint's responses in ``namespace`` (declared on ``cache``)."""
    policy = ViewPolicy.of(
        cache.tiers.namespace(namespace),
        vary,
        ttl_s=ttl_s,
        statuses=frozenset(statuses),
        max_body_bytes=max_body_bytes,
        allow_authorization=allow_authorization,
        allow_cookies=allow_cookies,
        pass_ttl_s=pass_ttl_s,
    )

    def decorate(endpoint: Endpoint) -> Endpoint:
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError("cache_endpoint is for async endpoints")

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Response:
            request = _request_of(args, kwargs)
            return await _Request(cache, policy, request).respond(lambda: endpoint(*args, **kwargs))

        return wrapper

    return decorate


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    from starlette.requests import Request  # noqa: PLC0415 - Starlette only when used

    for value in (*args, *kwargs.values()):
        if isinstance(value, Request):
            return value
    raise TypeError("a cached endpoint must take the Starlette Request")


class _Request:
    def __init__(self, cache: AsyncCache, policy: ViewPolicy, request: Request) -> None:
        self.cache = cache
        self.policy = policy
        self.request = request
        self.header = header_reader(request.headers)

    async def respond(self, endpoint: Callable[[], Awaitable[Response]]) -> Response:
        request, policy = self.request, self.policy
        if policy.bypass(request.method, self.header) is not None:
            return await endpoint()
        url = request.url
        key = policy.key(url.scheme, url.netloc, url.path, url.query, self.header)
        if request.method == "HEAD":
            stored = await self.cache.get(key, namespace=policy.namespace)
            return self._hit(stored, head=True) or await endpoint()
        own: list[Response] = []
        failed: list[BaseException] = []

        async def load() -> Loaded:
            try:
                response = await endpoint()
            except BaseException as exc:
                failed.append(exc)
                raise
            own.append(response)
            return self._store(response)

        stored = await self.cache.get_or_set(key, load, namespace=policy.namespace)
        if own:
            return own[0]  # this request loaded: the endpoint's own response object
        hit = self._hit(stored, head=False)
        if hit is not None:
            return hit  # another's, or stale for this request's failed endpoint
        if failed:
            raise failed[0]  # a pass mark served stale for the failure: not a response
        return await endpoint()  # a pass mark, or stored for other values of its Vary

    def _store(self, response: Response) -> Loaded:
        from starlette.responses import Response  # noqa: PLC0415

        if not isinstance(response, Response):
            raise TypeError(f"a cached endpoint returns a Response, not {type(response).__name__}")
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.raw_headers
        ]
        body = getattr(response, "body", None)  # streaming and file responses have none
        loaded, _ = self.policy.store(
            self.cache.tiers.namespace(self.policy.namespace),
            response.status_code,
            headers,
            bytes(body) if isinstance(body, bytes | bytearray | memoryview) else None,
            header=self.header,
            now=self.cache.tiers.clock(),
        )
        return loaded

    def _hit(self, stored: Any, head: bool) -> Response | None:
        if not is_response(stored) or not matches(stored, self.header):
            return None
        from starlette.responses import Response  # noqa: PLC0415

        status, headers, body = replay(stored, self.cache.tiers.clock(), head)
        response = Response(body, status_code=status)
        response.raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        return response


__all__ = ["cache_endpoint"]
