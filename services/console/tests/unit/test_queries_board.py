"""The queries pages' trends through the console's real app over ``FakeUpstreams``
answering query-analyzer's ``/api/v1/queries`` and ``/api/v1/queries/windows`` in the
shapes its OpenAPI document declares (checked here against the document, imported)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.app import build
from console.settings import ConsoleSettings
from console.testing import FakeUpstreams
from query_analyzer.api.openapi import DOCUMENT

FP = "0123456789abcdef"
HOUR = 3600.0
BASE = 490_000 * HOUR
STATS: dict[str, Any] = {
    "fingerprint": FP,
    "database": "shop",
    "fingerprint_kind": "parsed",
    "fingerprint_version": "1",
    "display_sql": "SELECT * FROM orders WHERE customer_id = $1",
    "sample_sql": "SELECT * FROM orders WHERE customer_id = 7",
    "calls": 30,
    "total_ms": 900.0,
    "mean_ms": 30.0,
    "min_ms": 10.0,
    "max_ms": 80.0,
    "p50_ms": 25.0,
    "p95_ms": 60.0,
    "p99_ms": 79.0,
    "rows": 30,
    "last_seen": BASE + 2 * HOUR,
}


def window(hour: int, p95: float, calls: int) -> dict[str, Any]:
    return {
        "fingerprint": FP,
        "database": "shop",
        "fingerprint_version": "1",
        "start": BASE + hour * HOUR,
        "step_s": HOUR,
        "calls": calls,
        "total_ms": 30.0 * calls,
        "mean_ms": 30.0,
        "min_ms": 10.0,
        "max_ms": 80.0,
        "rows": calls,
        "p50_ms": p95 / 2,
        "p95_ms": p95,
        "p99_ms": p95 + 1,
    }


WINDOWS = [window(0, 40.0, 10), window(1, 40.0, 10), window(2, 80.0, 10)]
DETAIL = {"fingerprint": FP, "stats": [STATS], "plans": [], "findings": [], "recommendations": []}


def _schema(path: str) -> dict[str, Any]:
    answer = DOCUMENT["paths"][path]["get"]["responses"]["200"]
    return dict(answer["content"]["application/json"]["schema"])


def test_the_fakes_answers_are_what_query_analyzers_document_declares() -> None:
    jsonschema.validate([STATS], _schema("/api/v1/queries"))
    jsonschema.validate(WINDOWS, _schema("/api/v1/queries/windows"))
    jsonschema.validate(DETAIL, _schema("/api/v1/queries/{fingerprint}"))


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeUpstreams, TestClient]]:
    fake = FakeUpstreams()
    fake.top, fake.windows, fake.query = [STATS], WINDOWS, DETAIL
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
            yield fake, client


def _asked(fake: FakeUpstreams) -> list[tuple[str, str]]:
    return next(q for p, q in fake.queries if p == "/api/v1/queries/windows")


async def test_the_board_draws_each_top_fingerprints_p95_trend_from_one_call(
    served: tuple[FakeUpstreams, TestClient],
) -> None:
    fake, client = served
    text = await (await client.get("/queries")).text()
    assert text.count("<polyline") == 1
    assert "+100% slower" in text  # 80 ms in the latest hour against 40 ms before
    assert "p95 per hour, last day" in text
    assert sorted(_asked(fake)) == [("buckets", "24"), ("fingerprint", FP), ("step", "3600")]
    fake.queries.clear()
    await client.get("/queries", params={"trend": "2h", "sort": "p95"})
    assert ("step", "300") in _asked(fake)


async def test_a_querys_page_shows_its_trend_with_the_buckets_as_a_table(
    served: tuple[FakeUpstreams, TestClient],
) -> None:
    _, client = served
    text = await (await client.get(f"/queries/{FP}")).text()
    assert 'data-testid="trend-shop"' in text
    assert 'width="360"' in text
    assert "The 3 buckets as a table" in text


async def test_trends_that_fail_are_named_and_the_queries_still_show(
    served: tuple[FakeUpstreams, TestClient],
) -> None:
    fake, client = served
    fake.windows = []
    text = await (await client.get("/queries")).text()
    assert "no calls last day" in text  # a fingerprint without windows
    fake.down.add("/api/v1/queries/windows")
    page = await client.get("/queries")
    assert page.status == 200
    text = await page.text()
    assert "Trends: query-analyzer: query-analyzer is down (fake)" in text
    assert f'data-testid="query-{FP}"' in text
    detail = await (await client.get(f"/queries/{FP}")).text()
    assert "Trend: query-analyzer: query-analyzer is down (fake)" in detail
