"""The runbooks the alert-engine links to are served by the console: every built-in rule's
link, made absolute under a console base URL, opens a rendered page; names outside the
runbooks directory are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alert_engine.app import load_rules
from alert_engine.cli import BUILTIN_RULES, builtin_text
from console.app import build
from console.core.runbooks import Runbooks
from console.settings import ConsoleSettings

ROOT = Path(__file__).resolve().parents[4]
RUNBOOKS = ROOT / "runbooks"


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    # Nothing upstream answers: the runbooks need none of the other services.
    settings = ConsoleSettings(
        CONSOLE_ALERT_ENGINE_URL="http://127.0.0.1:9",
        CONSOLE_RUNBOOKS_DIR=str(RUNBOOKS),
        CONSOLE_POLL_S=60,
    )
    async with TestClient(TestServer(build(settings))) as c:
        yield c


async def test_every_builtin_rules_runbook_link_opens_a_page(
    client: TestClient, tmp_path: Path
) -> None:
    base = str(client.make_url("/runbooks"))
    rules_file = tmp_path / "alerts.yml"
    rules_file.write_text(builtin_text(BUILTIN_RULES))
    links = {rule.annotations["runbook_url"] for rule in load_rules((str(rules_file),), base)}
    assert len(links) > 3
    for link in links:
        answer = await client.get(urlsplit(link).path)
        assert answer.status == 200, link
        page = await answer.text()
        assert '<article class="runbook"' in page
        assert "<h2>Investigate</h2>" in page, link


async def test_the_list_names_every_runbook_by_its_title(client: TestClient) -> None:
    page = await (await client.get("/runbooks")).text()
    for path in RUNBOOKS.glob("*.md"):
        if path.name != "README.md":
            assert f'href="/runbooks/{path.name}"' in page
    assert ">Database issues (PostgreSQL)</a>" in page


@pytest.mark.parametrize("name", ["..%2FREADME.md", "%2Fetc%2Fpasswd", "x.txt", "missing.md"])
async def test_a_name_outside_the_runbooks_is_a_404(client: TestClient, name: str) -> None:
    answer = await client.get(f"/runbooks/{name}")
    assert answer.status == 404
    assert "no runbook named" in await answer.text()


def test_html_inside_a_runbook_is_shown_as_text(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text("# X\n\n<script>alert(1)</script>\n")
    page = Runbooks(tmp_path).page("x.md")
    assert page is not None
    assert page.title == "X"
    assert "<script>" not in page.html
    assert "&lt;script&gt;" in page.html


def test_a_missing_directory_lists_nothing(tmp_path: Path) -> None:
    assert Runbooks(tmp_path / "absent").listing() == []
