"""The console in Debian's Chromium, driven by Playwright, over the real mesh: a viewer
sees no write controls; log in; filter the alerts live; open a firing alert, silence it
from its page with the preview, watch it move to silenced, expire the silence; open the
health board and a query finding with its trend; see a rule's pending alert; switch the
theme with the keyboard and find it remembered. Every page's requests stay on the
console's origin, and no page logs an error (a Content-Security-Policy violation would).
Screenshots go to ``<pytest's base temp>/console-screenshots``."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from notifier.samples import sample_request
from opsmesh.events import HealthReported, HealthStatus, SlowQueryObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import HEALTH, NOTIFICATIONS, SLOW_QUERIES
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, READ_TOKEN
from tests.e2e.console_fixtures import CHROMIUM, FLAGS, console, delete_rules, make_pending
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.e2e
__all__ = ["console"]  # the fixture, used by name

WAIT_MS = 30_000
ONE_ALERT = re.compile(r"^1 of \d+ alerts in 1 group\b")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.getbasetemp() / "console-screenshots"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


def post_alert(mesh: Mesh, labels: dict[str, str]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "in the browser"}}])
    req = urllib.request.Request(
        f"{mesh.running['alert-engine'].url}/api/v2/alerts", data=body.encode(), method="POST"
    )
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {API_TOKEN}")
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200


async def publish_events(infra: Endpoints, database: str, service: str, unique: str) -> None:
    """An N+1 request for query-analyzer, and a check that passes then fails for
    health-aggregator."""
    now = time.time()
    trace = {"trace_id": f"trace-{unique}", "parent_span_id": "view", "application": "shop"}
    # A page that lists posts, then reads each post's author: the N+1 shape.
    events = [
        SlowQueryObserved(
            sql="SELECT * FROM posts ORDER BY id LIMIT 20",
            duration_ms=4,
            database=database,
            started_at=now,
            span_id="s0",
            **trace,
        ),
        *(
            SlowQueryObserved(
                sql=f"SELECT * FROM authors WHERE id = {i}",
                duration_ms=15,
                database=database,
                started_at=now + 0.01 * (i + 1),
                span_id=f"s{i + 1}",
                **trace,
            )
            for i in range(5)
        ),
    ]
    reports = [
        HealthReported(
            service=service,
            instance="i-1",
            check="db",
            status=status,
            output=f"db {status.value}",
            ttl_s=600.0,
            reported_at=now + offset,
        )
        for offset, status in ((0.0, HealthStatus.PASS), (0.1, HealthStatus.FAIL))
    ]
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await producer.publish_many(Outgoing(SLOW_QUERIES, f"trace-{unique}", e) for e in events)
        for report in reports:  # one after the other: a transition, in order
            await producer.publish(Outgoing(HEALTH, f"{service}/i-1", report))
    finally:
        await producer.stop()


class Watched:
    """Every request a page makes and every error it logs."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


async def test_a_viewer_sees_no_write_controls_and_live_updates(
    browser: Browser, console: str, mesh: Mesh, unique: str, shots: Path
) -> None:
    page = await browser.new_page(base_url=console)
    watched = Watched(page)
    name = f"Live{unique}"
    await page.goto(f"/alerts?filter=alertname%3D%22{name}%22")
    await expect(page.get_by_role("link", name="Log in")).to_be_visible()
    await expect(page.get_by_test_id("summary")).to_have_text(re.compile(r"^0 of "))
    # Keyboard first: the first Tab reaches the skip link, which jumps to the content.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    # The alert fires while the page is open: the server-sent event brings it in, with
    # the page's filter, without a reload.
    await asyncio.to_thread(post_alert, mesh, {"alertname": name, "service": "live"})
    await expect(page.get_by_test_id("summary")).to_have_text(ONE_ALERT, timeout=WAIT_MS)
    await expect(page.get_by_role("link", name=name)).to_be_visible()
    await page.goto("/silences")
    await expect(page.get_by_role("heading", name="Silences")).to_be_visible()
    await expect(page.get_by_role("link", name="New silence")).to_have_count(0)
    # A read token logs in, and still sees no write control.
    await page.goto("/login")
    await page.get_by_label("Token").fill(READ_TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("viewer")).to_be_visible()
    await page.goto("/silences")
    await expect(page.get_by_role("link", name="New silence")).to_have_count(0)
    await page.screenshot(path=shots / "viewer-silences.png", full_page=True)
    assert watched.errors == []
    assert {urlsplit(u).netloc for u in watched.urls} == {urlsplit(console).netloc}


async def test_silence_a_firing_alert_from_its_page_and_expire_it(
    browser: Browser, console: str, mesh: Mesh, unique: str, shots: Path
) -> None:
    name = f"Browser{unique}"
    database = f"console_{unique}"
    service = f"shop-{unique}"
    await asyncio.to_thread(
        post_alert, mesh, {"alertname": name, "service": "checkout", "severity": "critical"}
    )
    await publish_events(mesh.endpoints, database, service, unique)
    page = await browser.new_page(base_url=console)
    watched = Watched(page)

    await page.goto("/login?next=/alerts")
    await page.get_by_label("Token").fill(API_TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{console}/alerts")
    await expect(page.get_by_text("writer")).to_be_visible()

    # Typing a filter swaps the groups in place and puts the filter in the address bar;
    # the alert appears there once the console's feed has read it (a live update).
    await page.get_by_label("Filter by matchers").fill(f'alertname="{name}"')
    await expect(page.get_by_test_id("summary")).to_have_text(ONE_ALERT, timeout=WAIT_MS)
    await expect(page).to_have_url(re.compile(r"/alerts\?filter=alertname"))
    await page.screenshot(path=shots / "alerts-filtered.png", full_page=True)

    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_test_id("alert-state")).to_have_text("active")
    await page.screenshot(path=shots / "alert-firing.png", full_page=True)

    await page.get_by_role("link", name="Silence this alert").click()
    await expect(page.get_by_label("Matchers")).to_have_value(
        f'alertname="{name}", service="checkout", severity="critical"'
    )
    await expect(page.get_by_test_id("preview-count")).to_have_text("1 alert matches.")
    # The live preview follows the matchers as they are typed.
    await page.get_by_label("Matchers").fill('severity="critical", service="checkout"')
    await expect(page.get_by_test_id("preview-count")).not_to_have_text("0 alerts match.")
    await page.get_by_label("Matchers").fill(f'alertname="{name}"')
    await expect(page.get_by_test_id("preview-count")).to_have_text("1 alert matches.")
    await page.get_by_label("Author").fill("browser-test")
    await page.get_by_label("Comment").fill("silenced from the console")
    await page.screenshot(path=shots / "silence-form.png", full_page=True)
    await page.get_by_role("button", name="Create silence").click()
    await expect(page.get_by_test_id("silence-state")).to_have_text("active")
    # Edit it: the form comes back filled; the engine keeps or replaces the silence, and
    # the console follows the id it answers.
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Author")).to_have_value("browser-test")
    await page.get_by_label("Comment").fill("silenced from the console, edited")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("silenced from the console, edited")).to_be_visible()
    await expect(page.get_by_test_id("silence-state")).to_have_text("active")
    silence_url = page.url

    await page.goto(f"/alerts?filter=alertname%3D%22{name}%22")
    await expect(page.get_by_text("silenced by")).to_be_visible()
    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_test_id("alert-state")).to_have_text("suppressed")
    await page.screenshot(path=shots / "alert-silenced.png", full_page=True)

    await page.goto(silence_url)
    await page.get_by_role("button", name="Expire").click()
    await expect(page.get_by_test_id("silence-state")).to_have_text("expired")
    await page.goto(f"/alerts?filter=alertname%3D%22{name}%22&state=active")
    await expect(page.get_by_test_id("summary")).to_have_text(ONE_ALERT)

    async def reported() -> object:
        path = f"/api/v1/services/{service}"
        try:
            return await asyncio.to_thread(mesh.get_json, "health-aggregator", path)
        except urllib.error.HTTPError:
            return None

    await eventually(
        reported,
        until=lambda found: isinstance(found, dict) and len(found["history"]) >= 2,
        what="the check's transition at health-aggregator",
    )
    await page.goto("/notifications")
    # The receiver's row; "default" may also name the receiver of a notification held back
    # by a rate limit in the table below, so the assertion reads the receivers' table only.
    receivers = page.get_by_role("table", name="Receivers and their integrations")
    await expect(receivers.get_by_role("cell", name="default", exact=True)).to_be_visible()
    await page.screenshot(path=shots / "notifications.png", full_page=True)

    await page.goto("/fleet")
    await expect(page.get_by_role("heading", name="Health")).to_be_visible()
    await expect(page.get_by_role("link", name=service)).to_be_visible()
    await page.screenshot(path=shots / "health-board.png", full_page=True)
    await page.emulate_media(color_scheme="dark")  # the dark theme follows the system's
    await page.screenshot(path=shots / "health-board-dark.png", full_page=True)
    await page.emulate_media(color_scheme="light")
    await page.get_by_role("link", name=service).click()
    await expect(page.get_by_role("heading", name=service)).to_be_visible()
    await expect(page.get_by_text("pass → fail")).to_be_visible()
    await page.screenshot(path=shots / "health-service.png", full_page=True)

    async def findings() -> list[dict]:
        path = f"/api/v1/findings?kind=n_plus_one&database={database}"
        return await asyncio.to_thread(mesh.get_json, "query-analyzer", path)

    [finding] = await eventually(findings, until=bool, what="the N+1 finding")
    await page.goto("/queries")
    await page.get_by_role("link", name=finding["title"]).first.click()
    await expect(page.get_by_role("heading", name="Findings")).to_be_visible()
    # The query's p95 trend, drawn from query-analyzer's windows of this very run.
    trend = page.get_by_test_id(f"trend-{database}")
    await expect(
        trend.get_by_role("img", name=re.compile(r"^p95 per hour, last day"))
    ).to_be_visible()
    await page.screenshot(path=shots / "query-finding.png", full_page=True)

    assert watched.errors == []
    assert {urlsplit(u).netloc for u in watched.urls} == {urlsplit(console).netloc}


async def publish_unroutable(infra: Endpoints, receiver: str, key: str) -> None:
    """A notification request for a receiver the notifier does not have: dead-lettered
    (not configured), as a request from an engine with a newer configuration would be."""
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await producer.publish(Outgoing(NOTIFICATIONS, key, sample_request(receiver, key=key)))
    finally:
        await producer.stop()


async def test_the_deliveries_page_shows_a_dead_letter_and_a_writer_replays_it(
    browser: Browser, console: str, mesh: Mesh, unique: str, shots: Path
) -> None:
    receiver, key = f"nobody-{unique}", f"e2e-dead-{unique}"
    await publish_unroutable(mesh.endpoints, receiver, key)

    async def letters(path: str) -> list[dict]:
        return await asyncio.to_thread(mesh.get_json, "notifier", path)

    [letter] = await eventually(
        lambda: letters(f"/api/v1/dead-letters?idempotency_key={key}"),
        until=bool,
        what="the request's dead letter at the notifier",
    )
    row = f"letter-{letter['id']}"
    page = await browser.new_page(base_url=console)
    watched = Watched(page)
    await page.goto(f"/deliveries?receiver={receiver}")
    await expect(page.get_by_role("heading", name="Deliveries", exact=True)).to_be_visible()
    await expect(page.get_by_test_id(row)).to_contain_text("not_configured")
    await expect(page.get_by_role("button", name=re.compile("^Replay"))).to_have_count(0)

    await page.goto(f"/login?next=/deliveries%3Freceiver%3D{receiver}")
    await page.get_by_label("Token").fill(API_TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("writer")).to_be_visible()
    await page.screenshot(path=shots / "deliveries.png", full_page=True)
    await page.get_by_role("button", name=f"Replay dead letter {letter['id']}").click()
    await expect(page.get_by_test_id("replayed")).to_contain_text(letter["id"])

    # Sent back to the notifier, which dead-letters it again (the receiver is still not
    # there): the new letter names the one it replays.
    replayed_from = letter["id"].replace("-", ":")
    await eventually(
        lambda: letters(f"/api/v1/dead-letters?idempotency_key={key}"),
        until=lambda found: any(d["replayed_from"] == replayed_from for d in found),
        what="the replay's own dead letter",
    )
    await page.goto(f"/deliveries?receiver={receiver}")
    await expect(page.get_by_text(f"replay of {letter['id']}")).to_be_visible()
    await page.screenshot(path=shots / "deliveries-replayed.png", full_page=True)
    assert watched.errors == []
    assert {urlsplit(u).netloc for u in watched.urls} == {urlsplit(console).netloc}


async def painted(page: Page, colour: str) -> None:
    """The page's background, once its stylesheet applies (waited on, not slept on)."""
    await expect(page.locator("body")).to_have_css("background-color", colour)


LIGHT_BG, DARK_BG = "rgb(255, 255, 255)", "rgb(18, 20, 23)"  # console.css: --bg


async def test_a_pending_rule_alert_shows_and_the_theme_switch_is_remembered(
    browser: Browser, console: str, mesh: Mesh, unique: str, shots: Path
) -> None:
    name = f"Pending{unique}"
    group = await make_pending(mesh, unique, name)
    try:
        page = await browser.new_page(base_url=console)
        watched = Watched(page)
        await page.emulate_media(color_scheme="light")
        await page.goto(f"/alerts?filter=alertname%3D%22{name}%22&state=pending")
        # The feed polls the engine's pending alerts; the live update brings this one in.
        await expect(page.get_by_test_id("pending-summary")).to_have_text(
            re.compile(r"^1 of \d+ rule alerts? waiting"), timeout=WAIT_MS
        )
        row = page.locator("tr.state-pending", has_text=name)
        await expect(row).to_contain_text("pending")
        await expect(row).to_contain_text(name)  # the rule
        await expect(row).to_contain_text("since ")
        await page.screenshot(path=shots / "alerts-pending.png", full_page=True)

        # The theme switch, by keyboard alone: Tab to "Dark", Enter.
        await painted(page, LIGHT_BG)
        dark = page.get_by_role("button", name="Dark")
        for _ in range(30):
            if await dark.evaluate("b => b === document.activeElement"):
                break
            await page.keyboard.press("Tab")
        await expect(dark).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        await expect(page).to_have_url(re.compile(r"state=pending"))  # back on the same view
        await expect(page.get_by_role("button", name="Dark")).to_have_attribute(
            "aria-pressed", "true"
        )
        await painted(page, DARK_BG)
        await page.screenshot(path=shots / "alerts-pending-dark.png", full_page=True)
        # Remembered: a new visit paints dark at once, though the system is light.
        await page.goto("/queries")
        await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        await painted(page, DARK_BG)
        await page.screenshot(path=shots / "queries-dark.png", full_page=True)
        # Light holds against a dark system; System follows it.
        await page.emulate_media(color_scheme="dark")
        await page.get_by_role("button", name="Light").click()
        await expect(page.locator("html")).to_have_attribute("data-theme", "light")
        await painted(page, LIGHT_BG)
        await page.get_by_role("button", name="System").click()
        await expect(page.locator("html")).to_have_attribute("data-theme", "system")
        await painted(page, DARK_BG)
        await page.emulate_media(color_scheme="light")
        await painted(page, LIGHT_BG)
        assert watched.errors == []
        assert {urlsplit(u).netloc for u in watched.urls} == {urlsplit(console).netloc}
    finally:
        await asyncio.to_thread(delete_rules, mesh, group)
