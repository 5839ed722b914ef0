"""What the shop adds to the SDK's defaults: its database check (``/health/ready`` and the
health reports) and one metric of its own, ``shop_checkouts_total``."""

from __future__ import annotations

from django.db import connection

import opsmesh_client
from opsmesh_client.health import callable_check
from opsmesh_client.metrics import Counter

CHECKOUTS = "shop_checkouts_total"


def ping_database() -> None:
    """A fresh connection each round: the checks run on a thread of their own, outside
    Django's request cycle, where a connection broken by a restart would never be
    replaced."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


class _Metrics:
    checkouts: Counter | None = None


def setup(client: opsmesh_client.Client) -> None:
    client.health.add("database", callable_check(ping_database))
    _Metrics.checkouts = client.metrics.counter(CHECKOUTS)


def checkout_done() -> None:
    if _Metrics.checkouts is not None:
        _Metrics.checkouts.inc()
