"""What the view decorators (``django_views``, ``asgi_views``) decide, without a framework:
which requests may use the cache, the key of a request, whether a response may be stored
and for how long, and the stored form of a response.

The rules are a shared cache's (RFC 9111) made strict by default:

- Only ``GET`` and ``HEAD`` use the cache; ``HEAD`` is answered from the entry a ``GET``
  stored (one key for both) and never stores one (a view may answer ``HEAD`` without its
  body).
- A request carrying ``Authorization`` or a ``Cookie`` goes to the view and stores nothing,
  unless the decorator opts in (then declare those headers in ``vary`` if the response
  depends on them).
- The key is the scheme, host, path, the query string with its parameters sorted by name
  (the order of one name's values is kept) and the values of the declared ``vary``
  headers. A response whose own ``Vary`` names other headers is stored with the request's
  values of those, and is served only to requests with the same values (RFC 9111 4.1);
  others go to the view. ``Vary: *`` is never stored.
- Stored: the statuses a shared cache may store without explicit freshness (RFC 9111
  4.2.2: 200, 203, 204, 300, 301, 308, 404, 410; 206 and the error statuses are left out),
  unless the response has ``Set-Cookie``, ``Cache-Control`` ``private``, ``no-store`` or
  ``no-cache`` (this cache cannot revalidate), or a body over the bound. Its TTL is the
  namespace's (or the decorator's), shortened to ``s-maxage``, else ``max-age``, else
  ``Expires`` minus ``Date``, less the response's own ``Age``; a TTL of 0 is not stored.
- A response that may not be stored leaves a "pass" mark under the key for
  ``pass_ttl_s``: the requests that waited on its load, and those in that time, go to the
  view at once instead of queueing behind one load each.
"""

from __future__ import annotations

import base64
import email.utils
import enum
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from opsmesh_client.cache.base import Loaded
from opsmesh_client.cache.settings import CacheError, Namespace

# RFC 9111 4.2.2's heuristically cacheable statuses, less 206 (ranges), 405, 414, 501.
STORABLE_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 410})
MAX_BODY_BYTES = 1 << 20
PASS_TTL_S = 5.0
# Connection-level headers (RFC 9110 7.6.1) and the ones a hit sets itself.
_NOT_STORED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "age",
        "set-cookie",
    }
)
PASS: dict[str, Any] = {"pass": True}

Header = Callable[[str], str | None]  # a request header's value by lowercase name, or None


class Skip(enum.StrEnum):
    """Why a request does not use the cache, or a response is not stored."""

    METHOD = "method"
    AUTHORIZATION = "authorization"
    COOKIE = "cookie"
    STATUS = "status"
    SET_COOKIE = "set-cookie"
    PRIVATE = "private"
    NO_STORE = "no-store"
    NO_CACHE = "no-cache"
    EXPIRED = "expired"
    VARY_STAR = "vary-star"
    TOO_LARGE = "too-large"
    STREAMING = "streaming"


@dataclass(frozen=True, slots=True)
class ViewPolicy:
    namespace: str = "default"
    ttl_s: float | None = None
    vary: tuple[str, ...] = ()
    statuses: frozenset[int] = STORABLE_STATUSES
    max_body_bytes: int = MAX_BODY_BYTES
    allow_authorization: bool = False
    allow_cookies: bool = False
    pass_ttl_s: float = PASS_TTL_S

    @classmethod
    def of(cls, namespace: Namespace, vary: Iterable[str] = (), **kwargs: Any) -> ViewPolicy:
        if namespace.refresh_ahead:
            # A reload would run the view again outside its request (another thread or
            # task, after the response was sent), with what that request held.
            raise CacheError("view caching does not support a namespace with refresh_ahead")
        policy = cls(
            namespace=namespace.name, vary=tuple(sorted({v.lower() for v in vary})), **kwargs
        )
        if policy.max_body_bytes < 0 or not policy.pass_ttl_s > 0:
            raise CacheError("max_body_bytes must not be negative and pass_ttl_s positive")
        return policy

    def bypass(self, method: str, header: Header) -> Skip | None:
        """Why this request must go to the view without the cache (None: it may use it)."""
        if method not in ("GET", "HEAD"):
            return Skip.METHOD
        if not self.allow_authorization and header("authorization") is not None:
            return Skip.AUTHORIZATION
        if not self.allow_cookies and header("cookie"):
            return Skip.COOKIE
        return None

    def key(self, scheme: str, host: str, path: str, query: str, header: Header) -> str:
        material: list[str | None] = [scheme, host.lower(), path, normal_query(query)]
        material += [header(name) for name in self.vary]
        digest = hashlib.sha256(json.dumps(material).encode()).hexdigest()
        return f"view:{digest}"

    def store(
        self,
        ns: Namespace,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        header: Header,
        now: float,
    ) -> tuple[Loaded, Skip | None]:
        """What a load stores: the response for its TTL, or a pass mark and the reason."""
        ttl, skip = self.ttl(ns, status, headers, body, now)
        if skip is not None or body is None:
            return Loaded(PASS, min(self.pass_ttl_s, ns.ttl_s)), skip or Skip.STREAMING
        lower = [(name.lower(), value) for name, value in headers]
        age = _int(_get(lower, "age")) or 0
        extra = [n for n in vary_names(lower) if n not in self.vary]
        entry = {
            "s": status,
            "h": [[name, value] for name, value in headers if name.lower() not in _NOT_STORED],
            "b": base64.b64encode(body).decode("ascii"),
            "t": now - age,
            "m": {name: header(name) for name in extra},
        }
        return Loaded(entry, ttl), None

    def ttl(
        self,
        ns: Namespace,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes | None,
        now: float,
    ) -> tuple[float, Skip | None]:
        if status not in self.statuses:
            return 0.0, Skip.STATUS
        lower = [(name.lower(), value) for name, value in headers]
        if any(name == "set-cookie" for name, _ in lower):
            return 0.0, Skip.SET_COOKIE
        directives = cache_control(", ".join(v for n, v in lower if n == "cache-control"))
        for name, skip in (
            ("private", Skip.PRIVATE),
            ("no-store", Skip.NO_STORE),
            ("no-cache", Skip.NO_CACHE),
        ):
            if name in directives:
                return 0.0, skip
        if "*" in vary_names(lower):
            return 0.0, Skip.VARY_STAR
        if body is not None and len(body) > self.max_body_bytes:
            return 0.0, Skip.TOO_LARGE
        ttl = self.ttl_s if self.ttl_s is not None else ns.ttl_s
        lifetime = _lifetime(directives, lower, now)
        if lifetime is not None:
            ttl = min(ttl, lifetime - (_int(_get(lower, "age")) or 0))
        if ttl <= 0:
            return 0.0, Skip.EXPIRED
        return ttl, None


def is_response(stored: Any) -> bool:
    return isinstance(stored, dict) and "s" in stored


def matches(stored: dict[str, Any], header: Header) -> bool:
    """The request has the values of the response's own Vary headers it was stored with."""
    return all(header(name) == value for name, value in stored.get("m", {}).items())


def replay(
    stored: dict[str, Any], now: float, head: bool
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (with ``Age``) and body of a hit (for ``HEAD``, no body and the
    ``GET``'s ``Content-Length``)."""
    body = base64.b64decode(stored["b"])
    headers = [(str(name), str(value)) for name, value in stored["h"]]
    if head:
        if not any(name.lower() == "content-length" for name, _ in headers):
            headers.append(("Content-Length", str(len(body))))
        body = b""
    headers.append(("Age", str(max(0, int(now - float(stored["t"]))))))
    return int(stored["s"]), headers, body


def normal_query(query: str) -> str:
    """Parameters sorted by name; one name's values keep their order (it may matter)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


def cache_control(value: str) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for part in value.split(","):
        name, sep, arg = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = arg.strip().strip('"') if sep else None
    return directives


def vary_names(lower_headers: list[tuple[str, str]]) -> list[str]:
    return [
        name.strip().lower()
        for header_name, value in lower_headers
        if header_name == "vary"
        for name in value.split(",")
        if name.strip()
    ]


def header_reader(headers: Mapping[str, str]) -> Header:
    """A ``Header`` over a case-insensitive mapping (Django's and Starlette's headers)."""
    return headers.get


def _lifetime(
    directives: Mapping[str, str | None], lower: list[tuple[str, str]], now: float
) -> float | None:
    """The response's own freshness lifetime (None: it gives none). A malformed value
    counts as already expired, as RFC 9111 says of ``Expires``. ``Expires`` is measured
    from ``Date``, or from now when the view set none (servers add it after the view)."""
    for name in ("s-maxage", "max-age"):
        if name in directives:
            value = _int(directives[name])
            return 0.0 if value is None else float(value)
    expires = _get(lower, "expires")
    if expires is None:
        return None
    try:
        until = email.utils.parsedate_to_datetime(expires).timestamp()
        date = _get(lower, "date")
        base = email.utils.parsedate_to_datetime(date).timestamp() if date else now
    except (TypeError, ValueError, IndexError):
        return 0.0
    return until - base


def _get(lower: list[tuple[str, str]], name: str) -> str | None:
    return next((value for header_name, value in lower if header_name == name), None)


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)
