"""The theme switch: system, light or dark, remembered in a cookie the server reads so the
first paint is right (no script); both palettes readable (WCAG contrast computed from the
stylesheet itself)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.api.auth import CSP, THEME_COOKIE
from console.app import STATIC, build
from console.core.theme import Theme, theme_of
from console.settings import ConsoleSettings
from console.testing import FakeUpstreams

CSS = (Path(STATIC) / "console.css").read_text()
TEXT_COLOURS = ("fg", "muted", "link", "crit", "warn", "info", "ok")


def palettes() -> list[dict[str, str]]:
    """Every block of the stylesheet that sets the palette, in order: light, then dark as
    the system asks, then dark as chosen."""
    found = []
    for block in re.findall(r"\{([^{}]*--bg:[^{}]*)\}", CSS):
        found.append(dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", block)))
    return found


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcags_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


def test_both_dark_palettes_are_the_same_and_differ_from_the_light_one() -> None:
    light, system_dark, chosen_dark = palettes()
    assert system_dark == chosen_dark
    assert set(light) == set(chosen_dark)
    assert light["bg"] != chosen_dark["bg"]


@pytest.mark.parametrize("which", [0, 2], ids=["light", "dark"])
def test_every_text_colour_reads_on_the_background_and_panels(which: int) -> None:
    palette = palettes()[which]
    for name in TEXT_COLOURS:
        for ground in ("bg", "panel"):
            ratio = contrast(palette[name], palette[ground])
            assert ratio >= 4.5, f"--{name} on --{ground}: {ratio:.2f}:1"
    assert contrast(palette["focus"], palette["bg"]) >= 3.0  # the focus ring (non-text)


def test_an_unknown_or_missing_cookie_is_the_systems_theme() -> None:
    assert theme_of(None) is Theme.SYSTEM
    assert theme_of("dark") is Theme.DARK
    assert theme_of("<script>") is Theme.SYSTEM
    assert (Theme.SYSTEM.color_scheme, Theme.DARK.color_scheme) == ("light dark", "dark")


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    fake = FakeUpstreams()
    async with TestServer(fake.app()) as upstream:
        url = str(upstream.make_url("")).rstrip("/")
        settings = ConsoleSettings(
            CONSOLE_ALERT_ENGINE_URL=url,
            CONSOLE_NOTIFIER_URL=url,
            CONSOLE_QUERY_ANALYZER_URL=url,
            CONSOLE_HEALTH_AGGREGATOR_URL=url,
            CONSOLE_POLL_S=60,
        )
        async with TestClient(TestServer(build(settings))) as c:
            yield c


def pressed(html: str) -> list[str]:
    return re.findall(r'value="(\w+)" aria-pressed="true"', html)


async def test_the_chosen_theme_is_remembered_and_served_on_the_first_paint(
    client: TestClient,
) -> None:
    page = await client.get("/alerts")
    html = await page.text()
    assert '<html lang="en" data-theme="system">' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert pressed(html) == ["system"]
    # No session needed, and no script: a plain form post, answered with a redirect back.
    chosen = await client.post(
        "/theme", data={"theme": "dark", "next": "/queries?sort=p95"}, allow_redirects=False
    )
    assert chosen.status == 303
    assert chosen.headers["Location"] == "/queries?sort=p95"
    cookie = chosen.cookies[THEME_COOKIE]
    assert cookie.value == "dark"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) >= 180 * 86_400
    page = await client.get("/alerts")
    html = await page.text()
    assert '<html lang="en" data-theme="dark">' in html
    assert '<meta name="color-scheme" content="dark">' in html
    assert pressed(html) == ["dark"]
    assert page.headers["Content-Security-Policy"] == CSP  # still no inline script allowed
    back = await client.post("/theme", data={"theme": "system"}, allow_redirects=False)
    assert back.headers["Location"] == "/alerts"
    assert back.cookies[THEME_COOKIE].value == ""  # deleted
    assert pressed(await (await client.get("/alerts")).text()) == ["system"]


async def test_a_bad_theme_another_site_or_another_host_are_refused(client: TestClient) -> None:
    assert (await client.post("/theme", data={"theme": "neon"})).status == 400
    foreign = await client.post(
        "/theme", data={"theme": "dark"}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status == 403
    away = await client.post(
        "/theme", data={"theme": "light", "next": "//evil.example/"}, allow_redirects=False
    )
    assert away.headers["Location"] == "/alerts"
