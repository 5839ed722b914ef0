"""Pending rule alerts on the alerts page, through the console's real app and feed over
``FakeUpstreams`` answering the alert-engine's ``/api/v1/alerts`` in the shape its OpenAPI
document declares (checked here against the document, imported)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from alert_engine.api.openapi import openapi_document
from console.app import build
from console.bootstrap import SERVICES
from console.settings import ConsoleSettings
from console.testing import FakeUpstreams

NOW = 1_800_000_000.0
PENDING: list[dict[str, Any]] = [
    {
        "fingerprint": "0f1e2d3c4b5a6978",
        "rule": "DiskFilling",
        "state": "pending",
        "labels": {"alertname": "DiskFilling", "team": "db", "severity": "warning"},
        "value": 0.93,
        "active_at": NOW - 90,
    },
    {
        "fingerprint": "8796a5b4c3d2e1f0",
        "rule": "QueueBacklog",
        "state": "pending",
        "labels": {"alertname": "QueueBacklog", "team": "web"},
        "value": 1200.0,
        "active_at": NOW - 30,
    },
]


def test_the_fakes_pending_answer_is_what_the_engines_document_declares() -> None:
    answer = openapi_document()["paths"]["/api/v1/alerts"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    jsonschema.validate({"alerts": [], "pending": PENDING}, schema)
    with pytest.raises(jsonschema.ValidationError):  # the declared shape has teeth
        jsonschema.validate({"alerts": [], "pending": [{"fingerprint": "x"}]}, schema)


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeUpstreams, TestClient]]:
    fake = FakeUpstreams()
    fake.pending = PENDING
    async with TestServer(fake.app()) as upstream:
        url = str(upstream.make_url("")).rstrip("/")
        settings = ConsoleSettings(
            CONSOLE_ALERT_ENGINE_URL=url,
            CONSOLE_NOTIFIER_URL=url,
            CONSOLE_QUERY_ANALYZER_URL=url,
            CONSOLE_HEALTH_AGGREGATOR_URL=url,
            CONSOLE_POLL_S=60,
        )
        async with TestClient(TestServer(build(settings))) as client:
            await client.app[SERVICES].feed.refresh()
            yield fake, client


async def test_the_feed_asks_for_pending_alerts_alone_and_the_page_shows_them(
    served: tuple[FakeUpstreams, TestClient],
) -> None:
    fake, client = served
    asked = [q for p, q in fake.queries if p == "/api/v1/alerts"]
    assert asked
    assert all(("pending_only", "true") in q for q in asked)
    text = await (await client.get("/alerts")).text()
    assert "2 of 2 rule alerts waiting out their <code>for</code>" in text
    assert text.index("QueueBacklog") > text.index("DiskFilling")  # longest pending first
    assert "<code>DiskFilling</code>" in text  # the rule
    assert "0.93" in text


async def test_pending_alerts_filter_by_state_and_matchers_in_page_and_fragment(
    served: tuple[FakeUpstreams, TestClient],
) -> None:
    _, client = served
    text = await (await client.get("/alerts", params={"state": "pending"})).text()
    assert '<option value="pending" selected>' in text
    assert "No alerts" not in text  # no group is expected in the pending view
    fragment = await client.get("/alerts/groups", params={"filter": 'team="web"'})
    shown = await fragment.text()
    assert "QueueBacklog" in shown
    assert "DiskFilling" not in shown
    assert "1 of 2 rule alerts" in shown
    active = await (await client.get("/alerts", params={"state": "active"})).text()
    assert "QueueBacklog" not in active
