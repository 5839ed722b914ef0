"""What every framework integration does around a request: open its span, time it,
record it under its route."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opsmesh_client import trace
from opsmesh_client.client import Client, get_client


@dataclass(slots=True)
class RequestScope:
    client: Client
    method: str
    context: trace.TraceContext
    started: float = field(default_factory=time.perf_counter)
    _token: object = None

    @classmethod
    def open(
        cls, client: Client | None, method: str, traceparent: str | None
    ) -> RequestScope | None:
        """None when no client was initialised: the application runs uninstrumented."""
        client = client or get_client()
        if client is None:
            return None
        scope = cls(client, method, trace.request_context(traceparent))
        scope._token = trace.enter(scope.context)
        return scope

    def close(self, route: str | None, status: int) -> None:
        self.client.requests.observe(route, self.method, status, time.perf_counter() - self.started)
        trace.leave(self._token)  # type: ignore[arg-type]
