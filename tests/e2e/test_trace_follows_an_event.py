"""One trace from a published slow-query event to the delivered webhook.

The application's request publishes its slow queries (an N+1: one list query, then the
same query per row) with its W3C ``traceparent``; query-analyzer finds the N+1 and
signals it, alert-engine fires a rule on the signal and notifies, the notifier delivers
the webhook. The sink sees the application's trace id in the webhook's ``traceparent``,
and every record in between carries it in its Kafka headers: the signal, the alert's
state change, its routing record, the notification request and the delivery result.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from opsmesh.events import SlowQueryObserved
from opsmesh.events.alerts import AlertsRouted, AlertStateChanged
from opsmesh.events.notifications import NotificationDelivered, NotificationRequested
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import (
    ALERT_GROUPS,
    ALERTS,
    DELIVERIES,
    NOTIFICATIONS,
    SIGNALS,
    SLOW_QUERIES,
)
from opsmesh.tracing.context import TraceContext, new_trace, parse_traceparent
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, Sink
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.e2e


def _rule(alertname: str, database: str) -> str:
    return json.dumps(
        {
            "groups": [
                {
                    "name": alertname,
                    "rules": [
                        {
                            "alert": alertname,
                            "kind": "finding",
                            "signal": "query_n_plus_one",
                            "matchers": {"database": database},
                            "quiet_for": "1h",
                            "annotations": {"summary": "N+1 on {{ labels.database }}"},
                        }
                    ],
                }
            ]
        }
    )


def _post_rules(mesh: Mesh, body: str) -> int:
    request = urllib.request.Request(
        f"{mesh.running['alert-engine'].url}/api/v1/rules",
        data=body.encode(),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _decoded(record: Any, kind: type[Any]) -> Any | None:
    """Other tests put deliberately bad records on these topics; they are not ours."""
    try:
        return msgspec.json.decode(record.value or b"", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def _find(
    infra: Endpoints, topic: str, kind: type[Any], mine: Callable[[Any], bool], what: str
) -> list[tuple[Any, TraceContext | None]]:
    """Our records on ``topic`` (decoded), each with the trace context of its header."""

    async def read() -> list[tuple[Any, TraceContext | None]]:
        found = []
        for record in await read_all(infra.kafka_bootstrap, topic):
            event = _decoded(record, kind)
            if event is not None and mine(event):
                found.append((event, parse_traceparent(header(record, "traceparent"))))
        return found

    return await eventually(read, until=bool, what=what)


async def test_one_trace_id_from_a_slow_query_event_to_the_delivered_webhook(
    infra: Endpoints, mesh: Mesh, sink: Sink, unique: str
) -> None:
    database = f"trace_{unique}"
    alertname = f"TraceFollowed{unique}"
    assert await asyncio.to_thread(_post_rules, mesh, _rule(alertname, database)) == 201

    # The application's request span: every slow query it publishes carries it.
    app_span = new_trace()
    now = time.time()
    request = {"trace_id": f"req-{unique}", "parent_span_id": "view", "application": "shop"}
    events = [
        SlowQueryObserved(
            sql="SELECT * FROM posts ORDER BY id LIMIT 20",
            duration_ms=4,
            database=database,
            started_at=now,
            span_id="q0",
            **request,
        ),
        *(
            SlowQueryObserved(
                sql=f"SELECT * FROM authors WHERE id = {i}",
                duration_ms=15,
                database=database,
                started_at=now + 0.01 * (i + 1),
                span_id=f"q{i + 1}",
                **request,
            )
            for i in range(5)
        ),
    ]
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await producer.publish_many(
            Outgoing(SLOW_QUERIES, f"req-{unique}", e, trace=app_span) for e in events
        )
    finally:
        await producer.stop()

    def delivered() -> list[dict[str, Any]]:
        return [
            e for e in sink.received() if e["payload"]["commonLabels"].get("alertname") == alertname
        ]

    [webhook] = await eventually(
        lambda: asyncio.to_thread(delivered), until=bool, timeout_s=60, what="the webhook"
    )
    seen = {"slow-query event (published)": app_span}
    seen["webhook traceparent (sink)"] = parse_traceparent(webhook["traceparent"])

    [(signal, seen["opsmesh.signals"])] = await _find(
        infra,
        SIGNALS.name,
        SignalObserved,
        lambda s: s.labels.get("database") == database,
        "the N+1 signal",
    )
    assert signal.name == "query_n_plus_one"
    [(changed, seen["opsmesh.alerts"])] = await _find(
        infra,
        ALERTS.name,
        AlertStateChanged,
        lambda a: a.labels.get("alertname") == alertname,
        "the alert's state change",
    )
    fingerprint = changed.fingerprint
    routed = await _find(
        infra,
        ALERT_GROUPS.name,
        AlertsRouted,
        lambda r: any(a.fingerprint == fingerprint for a in r.alerts),
        "the alert's routing record",
    )
    seen["opsmesh.alert-groups"] = routed[0][1]
    [mine] = [a for a in routed[0][0].alerts if a.fingerprint == fingerprint]
    seen["opsmesh.alert-groups (alert's traceparent)"] = parse_traceparent(mine.traceparent)
    [(notification, seen["opsmesh.notifications"])] = await _find(
        infra,
        NOTIFICATIONS.name,
        NotificationRequested,
        lambda n: any(a.fingerprint == fingerprint for a in n.alerts),
        "the notification request",
    )
    [(result, seen["opsmesh.deliveries"])] = await _find(
        infra,
        DELIVERIES.name,
        NotificationDelivered,
        lambda d: d.idempotency_key == notification.idempotency_key and d.channel != "none",
        "the delivery result",
    )
    assert result.outcome == "delivered"
    assert webhook["webhook_id"] == notification.idempotency_key

    print(f"\ntrace id at each hop (published {app_span.header()}):")
    for hop, context in seen.items():
        print(f"  {hop:45} {context.header() if context else None}")
    assert {hop: c.trace_id if c else None for hop, c in seen.items()} == dict.fromkeys(
        seen, app_span.trace_id
    )
