"""The deliveries page, a dead letter's replay and an alert's notifications, through the
console's real app over ``FakeUpstreams`` (the notifier's and the alert-engine's REST
endpoints, answering shapes their OpenAPI documents declare: checked below)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from alert_engine.api.openapi import openapi_document
from console.app import build
from console.bootstrap import SERVICES
from console.core.deliveries import alert_notifications, integration_rows, keys_of
from console.settings import ConsoleSettings
from console.testing import FakeUpstreams
from notifier.api.openapi import DOCUMENT as NOTIFIER

WRITER = "writer-token-0123456789"
READER = "reader-token-0123456789"
NOW = 1_800_000_000.0
FP = "a1b2c3d4e5f60718"

SUMMARY: dict[str, Any] = {
    "window_s": 86400.0,
    "integrations": [
        {
            "receiver": "team",
            "integration": "webhook-0",
            "configured": True,
            "delivered": 12,
            "failed": 0,
            "retried": 1,
            "retries": 2,
            "last_failure_at": None,
            "last_error": None,
            "breaker": {"state": "closed", "failures": 0, "retry_in_s": 0.0},
        },
        {
            "receiver": "pager",
            "integration": "pagerduty-0",
            "configured": True,
            "delivered": 3,
            "failed": 2,
            "retried": 2,
            "retries": 9,
            "last_failure_at": NOW - 30,
            "last_error": "server_error: retry deadline passed; last error: HTTP 503",
            "breaker": {"state": "open", "failures": 7, "retry_in_s": 4.0},
        },
    ],
}
DELIVERIES = [
    {
        "idempotency_key": "k-pager",
        "integration": "pagerduty-0",
        "receiver": "pager",
        "channel": "pagerduty-0",
        "result": "failed",
        "attempts": 5,
        "retries": 4,
        "status_code": 503,
        "error": "server_error: retry deadline passed; last error: HTTP 503",
        "finished_at": NOW - 30,
    },
    {
        "idempotency_key": "k-team",
        "integration": "webhook-0",
        "receiver": "team",
        "channel": "webhook-0",
        "result": "delivered",
        "attempts": 1,
        "retries": 0,
        "status_code": 200,
        "error": None,
        "finished_at": NOW - 60,
    },
]
LETTER = {
    "id": "2-41",
    "reason": "delivery_failed",
    "error": "pagerduty-0: server_error: retry deadline passed; last error: HTTP 503",
    "integration": "pagerduty-0",
    "failed_at": NOW - 30,
    "replayable": True,
    "replayed_from": None,
    "idempotency_key": "k-pager",
    "receiver": "pager",
    "group_key": '{}:{alertname="DiskFull"}',
    "status": "firing",
    "notify_reason": "first_notification",
    "fingerprints": [FP],
    "delivery_now": "failed",
}
NOTIFICATIONS = [
    {
        "group_key": '{}:{alertname="DiskFull"}',
        "receiver": "team",
        "firing": [FP],
        "resolved": [],
        "sequence": 1,
        "reason": "first_notification",
        "idempotency_key": "k-team",
        "notified_at": NOW - 60,
    },
    {
        "group_key": '{}:{alertname="DiskFull"}',
        "receiver": "pager",
        "firing": [FP],
        "resolved": [],
        "sequence": 1,
        "reason": "new_alerts",
        "idempotency_key": "k-pager",
        "notified_at": NOW - 40,
    },
]
GROUPS = [
    {
        "labels": {"alertname": "DiskFull"},
        "receiver": {"name": "team"},
        "alerts": [
            {
                "labels": {"alertname": "DiskFull", "severity": "critical"},
                "annotations": {},
                "fingerprint": FP,
                "startsAt": "2026-12-06T10:00:00Z",
                "updatedAt": "2026-12-06T10:00:00Z",
                "endsAt": "2026-12-06T11:00:00Z",
                "status": {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []},
                "receivers": [{"name": "team"}, {"name": "pager"}],
                "generatorURL": "",
            }
        ],
    }
]


def _schema(document: dict[str, Any], path: str, status: str = "200") -> dict[str, Any]:
    answer = document["paths"][path]["get"]["responses"][status]
    return dict(answer["content"]["application/json"]["schema"])


def test_the_fakes_answers_are_what_the_services_documents_declare() -> None:
    """The seam: the canned answers validate against the notifier's and the
    alert-engine's own OpenAPI documents, imported, not retyped."""
    jsonschema.validate(SUMMARY, _schema(NOTIFIER, "/api/v1/deliveries/summary"))
    jsonschema.validate(DELIVERIES, _schema(NOTIFIER, "/api/v1/deliveries"))
    jsonschema.validate([LETTER], _schema(NOTIFIER, "/api/v1/dead-letters"))
    jsonschema.validate(NOTIFICATIONS, _schema(openapi_document(), "/api/v1/notifications"))


def test_integrations_are_shown_worst_first() -> None:
    rows = integration_rows(SUMMARY)
    assert [(r.receiver, r.health) for r in rows] == [("pager", "failing"), ("team", "ok")]
    assert (rows[0].breaker, rows[0].breaker_failures, rows[0].retry_in_s) == ("open", 7, 4.0)
    degraded = {**SUMMARY["integrations"][1], "breaker": {"state": "closed"}}
    assert integration_rows({"integrations": [degraded]})[0].health == "degraded"


def test_an_alerts_notifications_carry_their_reasons_and_delivery_results() -> None:
    resolved = {**NOTIFICATIONS[0], "firing": [], "resolved": [FP], "idempotency_key": "k-r"}
    joined = alert_notifications(FP, [*NOTIFICATIONS, resolved], DELIVERIES)
    assert [(n.receiver, n.reason, n.outcome) for n in joined] == [
        ("pager", "new_alerts", "failed"),  # newest first
        ("team", "first_notification", "delivered"),
        ("team", "first_notification", "pending"),  # no result for k-r yet
    ]
    assert joined[2].as_status == "resolved"
    assert joined[0].deliveries[0]["status_code"] == 503
    assert keys_of([*NOTIFICATIONS, {**resolved, "idempotency_key": ""}]) == ["k-pager", "k-team"]


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[FakeUpstreams, str]]:
    fake = FakeUpstreams()
    fake.summary, fake.deliveries, fake.letters = SUMMARY, DELIVERIES, [LETTER]
    fake.groups, fake.notifications = GROUPS, NOTIFICATIONS
    fake.write_token = WRITER
    async with TestServer(fake.app()) as server:
        yield fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def client(upstreams: tuple[FakeUpstreams, str]) -> AsyncIterator[TestClient]:
    _, url = upstreams
    settings = ConsoleSettings(
        CONSOLE_ALERT_ENGINE_URL=url,
        CONSOLE_NOTIFIER_URL=url,
        CONSOLE_QUERY_ANALYZER_URL=url,
        CONSOLE_HEALTH_AGGREGATOR_URL=url,
        CONSOLE_API_TOKENS=f"{WRITER}:write;{READER}:read",
        CONSOLE_POLL_S=60,
    )
    async with TestClient(TestServer(build(settings))) as c:
        yield c


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} field"
    return found.group(1)


async def log_in(client: TestClient, token: str) -> None:
    form = await (await client.get("/login")).text()
    answer = await client.post(
        "/login",
        data={"token": token, "csrf": hidden(form, "csrf"), "next": "/deliveries"},
        allow_redirects=False,
    )
    assert answer.status == 303


async def test_the_deliveries_page_shows_integrations_failures_and_dead_letters(
    client: TestClient,
) -> None:
    page = await client.get("/deliveries")
    assert page.status == 200
    text = await page.text()
    # The failing integration first.
    assert text.index('"integration-pager-pagerduty-0"') < text.index(
        '"integration-team-webhook-0"'
    )
    assert "open, 7 failures in a row, next try in 4s" in text
    assert "HTTP 503" in text
    assert 'data-testid="letter-2-41"' in text
    assert "first notification" in text  # the letter's notify reason
    assert "Replay" not in text  # a viewer sees no write control
    assert 'aria-current="page"' in text


async def test_filters_reach_the_notifier_and_narrow_the_integrations(
    client: TestClient, upstreams: tuple[FakeUpstreams, str]
) -> None:
    fake, _ = upstreams
    text = await (await client.get("/deliveries?receiver=team&result=delivered")).text()
    asked = dict(next(q for p, q in fake.queries if p == "/api/v1/deliveries"))
    assert (asked["receiver"], asked["result"]) == ("team", "delivered")
    assert dict(next(q for p, q in fake.queries if p == "/api/v1/dead-letters"))["receiver"] == (
        "team"
    )
    assert "pagerduty-0" not in text.split('id="log-heading"')[0]  # only team's integration


async def test_a_notifier_that_fails_is_named_where_its_parts_would_be(
    client: TestClient, upstreams: tuple[FakeUpstreams, str]
) -> None:
    fake, _ = upstreams
    fake.down.add("notifier")
    page = await client.get("/deliveries")
    assert page.status == 200
    assert (await page.text()).count("notifier: notifier is down (fake)") == 3


async def test_a_writer_replays_a_dead_letter_with_the_sessions_csrf_token(
    client: TestClient, upstreams: tuple[FakeUpstreams, str]
) -> None:
    fake, _ = upstreams
    await log_in(client, WRITER)
    page = await (await client.get("/deliveries")).text()
    assert 'action="/deliveries/dead-letters/2-41/replay"' in page
    csrf = hidden(page, "csrf")
    url = "/deliveries/dead-letters/2-41/replay"
    assert (await client.post(url, data={})).status == 403  # no CSRF token
    assert (await client.post(url, data={"csrf": "wrong"})).status == 403
    assert fake.replays == []
    answer = await client.post(url, data={"csrf": csrf}, allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"] == "/deliveries?replayed=2-41"
    assert fake.replays == [("2-41", WRITER)]  # the session's own token, forwarded
    shown = await (await client.get(answer.headers["Location"])).text()
    assert "Dead letter 2-41 sent back" in shown


async def test_a_reader_sees_no_replay_and_may_not_post_one(
    client: TestClient, upstreams: tuple[FakeUpstreams, str]
) -> None:
    fake, _ = upstreams
    await log_in(client, READER)
    page = await (await client.get("/deliveries")).text()
    assert "Replay" not in page
    answer = await client.post(
        "/deliveries/dead-letters/2-41/replay", data={"csrf": hidden(page, "csrf")}
    )
    assert answer.status == 403
    assert fake.replays == []


async def test_a_refused_replay_shows_the_notifiers_reason(
    client: TestClient, upstreams: tuple[FakeUpstreams, str]
) -> None:
    fake, _ = upstreams
    fake.write_token = "another-token-the-notifier-knows"
    await log_in(client, WRITER)
    page = await (await client.get("/deliveries")).text()
    answer = await client.post(
        "/deliveries/dead-letters/2-41/replay", data={"csrf": hidden(page, "csrf")}
    )
    assert answer.status == 403
    assert "the token lacks the write scope" in await answer.text()


async def test_an_alerts_page_shows_its_notifications_and_their_deliveries(
    client: TestClient, upstreams: tuple[FakeUpstreams, str]
) -> None:
    fake, _ = upstreams
    await client.app[SERVICES].feed.refresh()
    text = await (await client.get(f"/alerts/{FP}")).text()
    section = text.split('id="notifications-heading"')[1]
    assert "new alerts" in section
    assert "first notification" in section
    assert "pagerduty-0: failed after 5 attempts (HTTP 503)" in section
    assert "webhook-0: delivered after 1 attempt" in section
    asked = next(q for p, q in fake.queries if p == "/api/v1/deliveries")
    assert sorted(v for k, v in asked if k == "idempotency_key") == ["k-pager", "k-team"]
    # The notifier away: the engine's part still shows, the failure is named.
    fake.down.add("notifier")
    text = await (await client.get(f"/alerts/{FP}")).text()
    assert "notifier: notifier is down (fake)" in text
    assert "new alerts" in text
