"""``cache_view``: a Django (sync) view's responses in the cache, by the rules of
``http_views`` (GET/HEAD only, credentials bypass, Vary, the response's Cache-Control,
``Age`` on hits), loaded once across instances through ``Cache.get_or_set``.

    from opsmesh_client.cache.django_views import cache_view

    @cache_view(cache, namespace="pages", ttl_s=60, vary=("Accept-Language",))
    def article(request, slug): ...

Class-based views: ``method_decorator(cache_view(...), name="get")``. The decorator sits
inside the middleware, so a hit still passes through it (the session and CSRF cookies
middleware adds are per request, not stored). A ``TemplateResponse`` is rendered by the
decorator, before ``process_template_response`` middleware could change its context.
Django is imported when a view is decorated, not with the cache.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

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
from opsmesh_client.cache.sync import Cache

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

View = Callable[..., "HttpResponseBase"]


def cache_view(
    cache: Cache,
    *,
    namespace: str = "default",
    ttl_s: float | None = None,
    vary: Iterable[str] = (),
    statuses: Iterable[int] = STORABLE_STATUSES,
    max_body_bytes: int = MAX_BODY_BYTES,
    allow_authorization: bool = False,
    allow_cookies: bool = False,
    pass_ttl_s: float = PASS_TTL_S,
) -> Callable[[View], View]:
    """Cache a sync Django view's responses in ``namespace`` (declared on ``cache``)."""
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

    def decorate(view: View) -> View:
        if inspect.iscoroutinefunction(view):
            raise TypeError("cache_view is for sync views; an async view needs AsyncCache")

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return _Request(cache, policy, request).respond(lambda: view(request, *args, **kwargs))

        return wrapper

    return decorate


class _Request:
    def __init__(self, cache: Cache, policy: ViewPolicy, request: HttpRequest) -> None:
        self.cache = cache
        self.policy = policy
        self.request = request
        self.header = header_reader(request.headers)

    def respond(self, view: Callable[[], HttpResponseBase]) -> HttpResponseBase:
        request, policy = self.request, self.policy
        method = request.method or "GET"
        if policy.bypass(method, self.header) is not None:
            return view()
        key = policy.key(
            request.scheme or "http",
            request.get_host(),
            request.path,
            request.META.get("QUERY_STRING", ""),
            self.header,
        )
        if method == "HEAD":
            stored = self.cache.get(key, namespace=policy.namespace)
            return self._hit(stored, head=True) or view()
        own: list[HttpResponseBase] = []
        failed: list[BaseException] = []

        def load() -> Loaded:
            try:
                response = view()
            except BaseException as exc:
                failed.append(exc)
                raise
            own.append(response)
            return self._store(response)

        stored = self.cache.get_or_set(key, load, namespace=policy.namespace)
        if own:
            return own[0]  # this request loaded: the view's own response object
        hit = self._hit(stored, head=False)
        if hit is not None:
            return hit  # another's, or stale for this request's failed view
        if failed:
            raise failed[0]  # a pass mark served stale for the failure: not a response
        return view()  # a pass mark, or stored for other values of the response's Vary

    def _store(self, response: HttpResponseBase) -> Loaded:
        render = getattr(response, "render", None)
        if callable(render) and not getattr(response, "is_rendered", True):
            render()
        headers = list(response.items())
        if response.cookies:
            headers += [
                ("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values()
            ]
        body = None if response.streaming else bytes(response.content)
        loaded, _ = self.policy.store(
            self.cache.tiers.namespace(self.policy.namespace),
            response.status_code,
            headers,
            body,
            header=self.header,
            now=self.cache.tiers.clock(),
        )
        return loaded

    def _hit(self, stored: Any, head: bool) -> HttpResponseBase | None:
        if not is_response(stored) or not matches(stored, self.header):
            return None
        from django.http import HttpResponse  # noqa: PLC0415 - Django only when used

        status, headers, body = replay(stored, self.cache.tiers.clock(), head)
        response = HttpResponse(body, status=status)
        for name, value in headers:
            response[name] = value
        return response


__all__ = ["cache_view"]
