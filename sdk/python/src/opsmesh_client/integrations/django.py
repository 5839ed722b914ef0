"""Django: add ``"opsmesh_client.integrations.django.OpsmeshMiddleware"`` to MIDDLEWARE.

The middleware answers the probes ``/health/live``, ``/health/ready`` and
``/health/startup`` (``opsmesh_client.health``), records each request under its URL
pattern (``orders/<int:pk>/``) and hooks every database connection (those open now and
every new one, through ``connection_created``) with an ``execute_wrapper`` that sends
each query under the request's span. The client is the one ``opsmesh_client.init`` made
(call it in settings.py or wsgi.py/asgi.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

from opsmesh_client.client import get_client
from opsmesh_client.health import PROBES
from opsmesh_client.integrations._request import RequestScope
from opsmesh_client.sqltext import postgres_placeholders


def execute_wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Django's ``connection.execute_wrapper`` hook: times the statement, never sends
    ``params``."""
    client = get_client()
    if client is None:
        return execute(sql, params, many, context)
    started_at = time.time()
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - started
        cursor = context.get("cursor")
        rows = getattr(cursor, "rowcount", None)
        connection = context["connection"]
        client.query(
            postgres_placeholders(sql) if connection.vendor == "postgresql" else sql,
            elapsed,
            started_at=started_at,
            database=str(connection.settings_dict.get("NAME") or "") or None,
            rows=rows if isinstance(rows, int) else None,
        )


def _hook(connection: Any, **_: Any) -> None:
    if execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(execute_wrapper)


def instrument_databases() -> None:
    """Hook every connection, present and future (idempotent)."""
    connection_created.connect(_hook, dispatch_uid="opsmesh_client")
    for connection in connections.all(initialized_only=True):
        _hook(connection)


def _route(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    return getattr(match, "route", None) or None


class OpsmeshMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        instrument_databases()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client = get_client()
        if client is not None and request.path in PROBES:
            status, body = client.health.probe(request.path)
            return HttpResponse(body, status=status, content_type="application/json")
        # META, not ``request.headers``: that builds a dict of every header on first use.
        traceparent = request.META.get("HTTP_TRACEPARENT")
        scope = RequestScope.open(None, request.method or "GET", traceparent)
        if scope is None:
            return self.get_response(request)
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            scope.close(_route(request), status)
