"""What the shop adds to the SDK's defaults: its database check (``/health/ready`` and the
health reports) and one metric of its own, ``shop_checkouts_total``."""

from __future__ import annotations

import opsmesh_client
from opsmesh_client.health import django_database
from opsmesh_client.metrics import Counter

CHECKOUTS = "shop_checkouts_total"


class _Metrics:
    checkouts: Counter | None = None


def setup(client: opsmesh_client.Client) -> None:
    # SELECT 1 on a connection the probe opens and closes each round (the checks run on a
    # thread of their own, outside Django's request cycle). Its latency is reported, not
    # judged: the demo shares a laptop with the whole mesh.
    client.health.add("database", django_database(warn_above_ms=None))
    _Metrics.checkouts = client.metrics.counter(CHECKOUTS)


def checkout_done() -> None:
    if _Metrics.checkouts is not None:
        _Metrics.checkouts.inc()
