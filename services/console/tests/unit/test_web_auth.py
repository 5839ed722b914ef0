"""Login, sessions, CSRF and write controls, through the console's real app. The other
services are unreachable here (a closed port): these paths must not need them, and the
pages say what failed instead of breaking."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from console.app import build
from console.bootstrap import SERVICES
from console.settings import ConsoleSettings
from console.upstream import UpstreamError
from opsmesh.web.connections import REQUEST_TIMEOUT_KEY
from opsmesh_dev.infra.process import free_port

WRITER = "writer-token-0123456789"
READER = "reader-token-0123456789"


def console_app() -> web.Application:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = ConsoleSettings(
        CONSOLE_ALERT_ENGINE_URL=nowhere,
        CONSOLE_NOTIFIER_URL=nowhere,
        CONSOLE_QUERY_ANALYZER_URL=nowhere,
        CONSOLE_HEALTH_AGGREGATOR_URL=nowhere,
        CONSOLE_API_TOKENS=f"{WRITER}:write;{READER}:read",
        CONSOLE_POLL_S=60,
    )
    return build(settings)


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(console_app())) as c:
        yield c


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} field"
    return found.group(1)


async def log_in(client: TestClient, token: str) -> str:
    """Logs in; returns the session's CSRF token (from the next page's forms)."""
    form = await (await client.get("/login")).text()
    answer = await client.post(
        "/login",
        data={"token": token, "csrf": hidden(form, "csrf"), "next": "/silences/new"},
        allow_redirects=False,
    )
    assert answer.status == 303
    cookie = answer.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("opsmesh_console="))
    assert "HttpOnly" in session
    assert "SameSite=Strict" in session
    page = await (await client.get("/alerts")).text()
    return hidden(page, "csrf")


async def test_a_viewer_sees_pages_without_write_controls(client: TestClient) -> None:
    with pytest.raises(UpstreamError):  # a read of its own, not a race with the first poll
        await client.app[SERVICES].feed.refresh()
    page = await client.get("/alerts")
    assert page.status == 200
    text = await page.text()
    assert "Log in" in text
    assert "New silence" not in (await (await client.get("/silences")).text())
    assert "alert-engine: unreachable" in text  # the feed's failure, named
    new = await client.get("/silences/new", allow_redirects=False)
    assert new.status == 303
    assert new.headers["Location"].startswith("/login")


async def test_every_page_has_a_content_security_policy(client: TestClient) -> None:
    for path in ("/alerts", "/login", "/fleet", "/queries", "/notifications"):
        answer = await client.get(path)
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"], path
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_login_needs_the_forms_own_csrf_cookie_and_a_known_token(
    client: TestClient,
) -> None:
    forged = await client.post("/login", data={"token": WRITER, "csrf": "guess"})
    assert forged.status == 403
    form = await (await client.get("/login")).text()
    unknown = await client.post(
        "/login", data={"token": "nobody-0123456789abc", "csrf": hidden(form, "csrf")}
    )
    assert unknown.status == 401
    assert "unknown token" in await unknown.text()


async def test_a_reader_logs_in_but_may_not_write(client: TestClient) -> None:
    await log_in(client, READER)
    assert (await client.get("/silences/new")).status == 403
    assert "Log out" in await (await client.get("/alerts")).text()


async def test_writes_need_the_sessions_csrf_token_and_this_origin(client: TestClient) -> None:
    csrf = await log_in(client, WRITER)
    form = await client.get("/silences/new")
    assert form.status == 200
    body = {"matchers": "", "duration": "2h", "created_by": "ann", "comment": "x"}
    assert (await client.post("/silences", data=body)).status == 403
    assert (await client.post("/silences", data={**body, "csrf": "wrong"})).status == 403
    cross = await client.post(
        "/silences", data={**body, "csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status == 403
    # With the token, the form reaches the handler, which refuses the empty matchers.
    refused = await client.post("/silences", data={**body, "csrf": csrf})
    assert refused.status == 400
    assert "at least one matcher" in await refused.text()
    by_header = await client.post("/silences", data=body, headers={"X-CSRF-Token": csrf})
    assert by_header.status == 400


async def test_logout_needs_csrf_and_ends_the_session(client: TestClient) -> None:
    csrf = await log_in(client, WRITER)
    assert (await client.post("/logout")).status == 403
    out = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/silences/new", allow_redirects=False)).status == 303


async def test_a_bad_filter_is_a_400_that_names_it(client: TestClient) -> None:
    answer = await client.get("/alerts", params={"filter": 'team="db'})
    assert answer.status == 400
    assert "Filter:" in await answer.text()


async def test_login_redirects_only_to_a_local_path(client: TestClient) -> None:
    form = await (await client.get("/login")).text()
    answer = await client.post(
        "/login",
        data={"token": READER, "csrf": hidden(form, "csrf"), "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert answer.headers["Location"] == "/alerts"


async def test_the_event_stream_announces_a_change_the_page_missed_and_ends_in_time() -> None:
    """A page rendered from an older version (``since``) hears of the change at once; the
    stream ends by itself before the request deadline would cut it."""
    app = console_app()
    app[REQUEST_TIMEOUT_KEY] = 0.5  # as start_guarded sets it: 0.4 s of stream
    async with (
        TestClient(TestServer(app)) as client,
        client.get("/events", params={"since": "-1"}) as answer,
    ):
        assert answer.headers["Content-Type"] == "text/event-stream"
        body = await asyncio.wait_for(answer.content.read(), timeout=10)  # until the end
    assert body.startswith(b"retry: 1000\n\n")
    assert b"id: 0\nevent: alerts\ndata: 0\n\n" in body
