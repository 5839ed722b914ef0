"""An aiohttp session whose resolver refuses addresses the target policy forbids."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from notifier.core.targets import TargetPolicy


class PolicyResolver(AbstractResolver):
    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self._policy.check(host, result["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()


def check_literal_host(url: str, policy: TargetPolicy) -> None:
    """IP-literal URLs bypass the resolver, so they are checked here."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    policy.check(host, host)


def safe_session(
    policy: TargetPolicy,
    *,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None = None,
    **kwargs: Any,
) -> aiohttp.ClientSession:
    # TLS verification stays on: a context only adds trusted CAs, never disables checks.
    connector = aiohttp.TCPConnector(
        resolver=PolicyResolver(policy),
        # No per-host cap: lanes bound each destination's concurrency, and destinations
        # sharing a host (one gateway, several paths) must not queue behind each other.
        limit=400,
        limit_per_host=0,
        ssl=ssl_context if ssl_context is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s, connect=min(5.0, timeout_s)),
        **kwargs,
    )
