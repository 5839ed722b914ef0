"""The HTTP boundary without infrastructure: who may read the configuration, the guard on
query and path parameters, and the 400s the request shapes give."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alert_engine.api.auth import ApiTokens, auth_middleware
from alert_engine.api.guard import parameter_guard
from alert_engine.api.shapes import PostableSilence, decode_alerts, decode_silence, to_silence

READER = "reader-token-0123456789"
WRITER = "writer-token-0123456789"


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, **dict(request.match_info)})


async def _client(*, public_status: bool, read_requires_token: bool = False) -> TestClient:
    tokens = ApiTokens.parse(f"{READER}:read;{WRITER}:write")
    app = web.Application(
        middlewares=[
            auth_middleware(
                tokens, read_requires_token=read_requires_token, public_status=public_status
            ),
            parameter_guard,
        ]
    )
    app.router.add_get("/api/v2/status", _ok)
    app.router.add_get("/api/v2/alerts", _ok)
    app.router.add_get("/api/v1/alerts/{fingerprint}/history", _ok)
    app.router.add_delete("/api/v1/rules/{group}", _ok)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def closed() -> AsyncIterator[TestClient]:
    client = await _client(public_status=False)
    yield client
    await client.close()


@pytest.fixture
async def opened() -> AsyncIterator[TestClient]:
    client = await _client(public_status=True)
    yield client
    await client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_configuration_needs_a_read_token(closed: TestClient) -> None:
    response = await closed.get("/api/v2/status")
    assert response.status == 401
    assert "read" in await response.text()
    unknown = await closed.get("/api/v2/status", headers=bearer("x" * 20))
    assert unknown.status == 401
    assert (await closed.get("/api/v2/status", headers=bearer(READER))).status == 200
    assert (await closed.get("/api/v2/status", headers=bearer(WRITER))).status == 200
    # Other reads stay open (Prometheus, Grafana and amtool read alerts without one).
    assert (await closed.get("/api/v2/alerts")).status == 200


async def test_public_status_opens_it(opened: TestClient) -> None:
    assert (await opened.get("/api/v2/status")).status == 200


async def test_a_401_says_how_to_give_a_token_with_amtool_and_opsmesh(closed: TestClient) -> None:
    for headers in ({}, bearer("x" * 20)):
        response = await closed.get("/api/v2/status", headers=headers)
        assert response.status == 401
        text = await response.text()
        assert "--http.config.file" in text, "amtool's way"
        assert "authorization: {credentials: <token>}" in text
        assert "--token" in text
        assert "$ALERT_ENGINE_TOKEN" in text, "opsmesh's way"


async def test_read_requires_token_covers_it_too() -> None:
    client = await _client(public_status=True, read_requires_token=True)
    try:
        assert (await client.get("/api/v2/status")).status == 401
        assert (await client.get("/api/v2/alerts")).status == 401
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/api/v2/alerts?filter=a%3D%22x%00%22", "query parameter 'filter': contains a NUL"),
        ("GET", "/api/v2/alerts?a%00=x", "query parameter 'a\\x00': contains a NUL"),
        ("GET", "/api/v1/alerts/ab%00cd/history", "path parameter 'fingerprint': contains a NUL"),
        ("DELETE", "/api/v1/rules/g%00", "path parameter 'group': contains a NUL"),
    ],
)
async def test_nul_in_a_parameter_is_a_400_naming_it(
    opened: TestClient, method: str, path: str, message: str
) -> None:
    response = await opened.request(method, path, headers=bearer(WRITER))
    assert response.status == 400
    assert message in await response.text()


async def test_a_long_parameter_is_a_400(opened: TestClient) -> None:
    response = await opened.get("/api/v2/alerts", params={"filter": "x" * 9000})
    assert response.status in (400, 414)  # aiohttp may refuse the request line first


async def test_clean_parameters_pass(opened: TestClient) -> None:
    response = await opened.get("/api/v1/alerts/abcd/history?limit=5")
    assert response.status == 200
    assert (await response.json())["fingerprint"] == "abcd"


# -- request shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (rb'[{"labels": {"a": "\ud800"}}]', "[0].labels.a: contains a lone UTF-16 surrogate"),
        (rb'[{"labels": {"a": "x\udc00y"}}]', "[0].labels.a: contains a lone UTF-16 surrogate"),
        (rb'[{"labels": {"a": "x"}, "annotations": {"\ud83d": ""}}]', "[0].annotations key"),
        (b"[" * 5000 + b"]" * 5000, "invalid alerts"),
        (b'{"labels": {}}', "invalid alerts: Expected `array`"),
        (b"\xff\xfe", "invalid alerts"),
        (b"", "invalid alerts"),
    ],
)
def test_bad_alert_bodies_are_400s(body: bytes, message: str) -> None:
    with pytest.raises(web.HTTPBadRequest) as refused:
        decode_alerts(body)
    assert message in (refused.value.text or "")


def silence(**changes: object) -> PostableSilence:
    fields: dict[str, object] = {
        "matchers": [{"name": "team", "value": "db", "isRegex": False, "isEqual": True}],
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": "2030-01-01T01:00:00Z",
        "createdBy": "me",
        "comment": "maintenance",
    }
    fields.update(changes)
    return decode_silence(json.dumps(fields).encode())


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        (lambda: silence(createdBy="me\x00"), "createdBy: contains a NUL"),
        (lambda: silence(comment="\x00"), "comment: contains a NUL"),
        (lambda: silence(id="x\x00"), "id: contains a NUL"),
        (lambda: silence(endsAt="9999-12-31T23:59:59-23:59"), "endsAt: 9999-12-31T23:59:59-23:59"),
        (lambda: silence(startsAt="1969-12-31T23:00:00Z"), "startsAt: 1969-12-31"),
        (
            lambda: silence(matchers=[{"name": "a", "value": "(a)\\1", "isRegex": True}]),
            "matchers[0]: invalid regex in a=~'(a)\\\\1': error parsing regexp",
        ),
        (
            lambda: silence(matchers=[{"name": "a\x00", "value": "x", "isRegex": False}]),
            "matchers[0]: matcher label name 'a\\x00' contains a NUL",
        ),
    ],
)
def test_bad_silences_are_400s_naming_the_field(posted: object, message: str) -> None:
    with pytest.raises(web.HTTPBadRequest) as refused:
        to_silence(posted(), now=0.0)  # type: ignore[operator]
    assert message in (refused.value.text or "")


def test_a_naive_silence_time_is_utc() -> None:
    made = to_silence(silence(startsAt="2030-01-01T00:00:00"), now=0.0)
    assert made.starts_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
