"""Outbound connections under the target policy, and errors fit to log.

Every connection a channel makes is checked on the socket address it is about to connect
to, not on the URL it came from:

- HTTP (webhooks, Slack, PagerDuty): ``safe_session``'s connector resolves names through
  ``PolicyResolver`` (every answer checked, so DNS rebinding gains nothing) and creates
  every socket through a factory that checks the address again. aiohttp skips the
  resolver for IP-literal hosts; the factory is what catches those, in whatever form
  the host was written (``[::ffff:127.0.0.1]``; ``2130706433`` and ``0177.0.0.1`` go
  through the resolver, which reads them as 127.0.0.1).
- Redirects are never followed, by any client on the session (slack-sdk included): a
  middleware turns every 3xx redirect into ``RedirectRefused``, a delivery failure
  that is not retried. A 307 would otherwise replay the POST body to wherever the
  ``Location`` points.
- SMTP: ``connect_checked`` resolves and checks the smarthost, then hands aiosmtplib a
  socket already connected to a checked address (TLS still verifies the host name).

``Redactor`` turns an exception or a response into an error message that holds no
secret: the destination's own secrets are replaced, URLs are cut to ``scheme://host/...``
(aiohttp's messages carry the whole URL, and a Slack webhook's path is its secret), and
characters PostgreSQL cannot store are escaped. Errors go to logs, the delivery log, DLQ
headers and ``NotificationDelivered``; all of them come through here.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from notifier.channels.base import SendResult
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy, TargetRefused
from opsmesh.logging import redact_urls
from opsmesh.tracing.http import trace_outgoing

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ERROR_MAX = 1000


class PolicyResolver(AbstractResolver):
    def __init__(self, policy: TargetPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            try:
                self._policy.check(host, result["host"])
            except TargetRefused as exc:
                raise RefusedAddress(exc) from None
        return results

    async def close(self) -> None:
        await self._inner.close()


class RefusedAddress(OSError):
    """A refusal as the HTTP client expects a resolver or socket factory to fail: an
    ``OSError``, which it reports as a connection error (``.os_error``) before any
    connection is attempted."""

    def __init__(self, refused: TargetRefused) -> None:
        super().__init__(errno.EACCES, str(refused))
        self.refused = refused


class RedirectRefused(aiohttp.ClientError):
    def __init__(self, status: int, location: str) -> None:
        super().__init__(
            f"HTTP {status} redirect to {redact_urls(location) or 'nowhere'}; "
            "redirects are not followed: configure the final URL"
        )
        self.status = status


def socket_factory(policy: TargetPolicy) -> Callable[[Any], socket.socket]:
    def make(addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        host = str(address[0])
        try:
            policy.check(host, host)
        except TargetRefused as exc:
            raise RefusedAddress(exc) from None
        return socket.socket(family, kind, proto)

    return make


async def _no_redirects(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    response = await handler(request)
    if response.status in REDIRECTS:
        location = response.headers.get("Location", "")
        response.close()
        raise RedirectRefused(response.status, location)
    return response


def safe_connector(
    policy: TargetPolicy,
    *,
    ssl_context: ssl.SSLContext | None = None,
    resolver: AbstractResolver | None = None,
) -> aiohttp.TCPConnector:
    # TLS verification stays on: a context only adds trusted CAs, never disables checks.
    return aiohttp.TCPConnector(
        resolver=PolicyResolver(policy, resolver),
        socket_factory=socket_factory(policy),
        # No per-host cap: lanes bound each destination's concurrency, and destinations
        # sharing a host (one gateway, several paths) must not queue behind each other.
        limit=400,
        limit_per_host=0,
        ssl=ssl_context if ssl_context is not None else True,
    )


def safe_session(
    policy: TargetPolicy,
    *,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None = None,
    resolver: AbstractResolver | None = None,
    **kwargs: Any,
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=safe_connector(policy, ssl_context=ssl_context, resolver=resolver),
        timeout=aiohttp.ClientTimeout(total=timeout_s, connect=min(5.0, timeout_s)),
        # The current trace context goes out as ``traceparent`` (a span per request when
        # spans are exported); outermost, so a refused redirect ends that span too.
        middlewares=(trace_outgoing, _no_redirects),
        # Proxies from the environment would connect somewhere the policy never saw.
        trust_env=False,
        **kwargs,
    )


async def connect_checked(
    host: str,
    port: int,
    policy: TargetPolicy,
    *,
    timeout_s: float,
    resolve: Callable[..., Awaitable[list[Any]]] | None = None,
) -> socket.socket:
    """A TCP socket connected to ``host:port``, to an address the policy allows.

    Every address the name resolves to is checked first (any refused: refused, as for
    HTTP), then tried in order; raises ``TargetRefused`` or ``OSError``."""
    loop = asyncio.get_running_loop()
    lookup = resolve if resolve is not None else loop.getaddrinfo
    async with asyncio.timeout(timeout_s):
        infos = await lookup(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        for info in infos:
            policy.check(host, str(info[4][0]))
        last: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
    raise last if last is not None else OSError(f"{host} resolves to no address")


def _refusal(exc: BaseException) -> TargetRefused | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TargetRefused):
            return current
        if isinstance(current, RefusedAddress):
            return current.refused
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, RefusedAddress):
            return os_error.refused
        current = current.__cause__ or current.__context__
    return None


def _with_url_parts(secret: str) -> Iterator[str]:
    yield secret
    if not secret.startswith(("http://", "https://")):
        return
    try:
        parts = urlsplit(secret)
    except ValueError:
        return
    if parts.path not in ("", "/"):
        yield parts.path
        yield parts.path.lstrip("/")
    if parts.query:
        yield parts.query
        yield f"{parts.path}?{parts.query}"


class Redactor:
    """Error text without a destination's secrets, any URL's path or query, or NULs."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # A secret URL's path and query are secrets on their own: an error page or a proxy
        # may echo the path alone (a Slack or Teams webhook's token is its path).
        found = {part for s in secrets if s for part in _with_url_parts(s)}
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = redact_urls(text)
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        if len(text) > _ERROR_MAX:
            text = text[:_ERROR_MAX] + "…"
        return text.replace("\x00", "\\x00")

    def failure(self, exc: BaseException) -> SendResult:
        """A send that raised, classified: refused target and redirects are final,
        connection trouble and timeouts are retried."""
        refused = _refusal(exc)
        if refused is not None:
            return SendResult(
                ok=False, failure=FailureKind.REFUSED_TARGET, error=self(str(refused))
            )
        if isinstance(exc, aiohttp.InvalidURL):
            # e.g. a host in a form the client will not connect to (``2130706433``).
            return SendResult(
                ok=False,
                failure=FailureKind.REFUSED_TARGET,
                error=self(f"invalid target URL: {type(exc).__name__}: {exc}"),
            )
        if isinstance(exc, RedirectRefused):
            return SendResult(
                ok=False,
                status_code=exc.status,
                failure=FailureKind.REDIRECTED,
                error=self(str(exc)),
            )
        return SendResult(
            ok=False, failure=FailureKind.NETWORK, error=self(f"{type(exc).__name__}: {exc}")
        )
