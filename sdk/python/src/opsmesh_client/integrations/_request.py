"""What every framework integration does around a request: open its span, time it,
record it under its route."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opsmesh_client import trace
from opsmesh_client.client import Client, get_client
from opsmesh_client.profiling import OpenProfile
from opsmesh_client.requests import UNMATCHED_ROUTE


@dataclass(slots=True)
class RequestScope:
    client: Client
    method: str
    context: trace.TraceContext
    started: float = field(default_factory=time.perf_counter)
    _token: object = None
    _profile: OpenProfile | None = None
    _started_at: float = 0.0

    @classmethod
    def open(
        cls,
        client: Client | None,
        method: str,
        traceparent: str | None,
        *,
        asynchronous: bool = False,
    ) -> RequestScope | None:
        """None when no client was initialised: the application runs uninstrumented.
        ``asynchronous``: the request runs in a task of an asyncio loop (ASGI, aiohttp)
        rather than on a thread of its own."""
        client = client or get_client()
        if client is None:
            return None
        scope = cls(client, method, trace.request_context(traceparent))
        scope._token = trace.enter(scope.context)
        scope._profile = client.begin_profile(asynchronous=asynchronous)
        if scope._profile is not None:
            scope._started_at = client.clock()
        return scope

    def close(self, route: str | None, status: int) -> None:
        duration_s = time.perf_counter() - self.started
        self.client.requests.observe(route, self.method, status, duration_s)
        if self._profile is not None:
            self.client.end_profile(
                self._profile,
                route=route or UNMATCHED_ROUTE,
                method=self.method,
                status=status,
                duration_s=duration_s,
                started_at=self._started_at,
            )
        trace.leave(self._token)  # type: ignore[arg-type]
