"""``opsmesh cdn``: the purge the options describe, and the status tables."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from opsmesh.cli.cdn import purge_event, render_status
from opsmesh.cli.main import cli
from opsmesh.events.cdn import CdnPurgeScope, purge_integration, purge_key

T0 = 1_700_000_000.0


def event(**options: object):  # type: ignore[no-untyped-def]
    given: dict[str, object] = {
        "urls": (),
        "prefixes": (),
        "tags": (),
        "everything": False,
        "providers": (),
        "purge_id": None,
        "reason": "",
        "now": T0,
    }
    given.update(options)
    return purge_event(**given)  # type: ignore[arg-type]


def test_one_scope_becomes_the_event() -> None:
    purge = event(tags=("product-7", "home"), providers=("fastly",), reason="price change")
    assert purge.scope is CdnPurgeScope.TAG
    assert purge.values == ["product-7", "home"]
    assert purge.providers == ["fastly"]
    assert purge.source == "cli"
    assert purge.id.startswith("cli-")
    assert event(everything=True, purge_id="d-1").values == []


@pytest.mark.parametrize(
    "options",
    [{}, {"urls": ("a",), "tags": ("b",)}, {"prefixes": ("/",), "everything": True}],
)
def test_anything_but_one_scope_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(click.UsageError, match="exactly one"):
        event(**options)


def test_the_events_limits_are_checked_before_publishing() -> None:
    with pytest.raises(click.UsageError, match="providers"):
        event(urls=("a",), providers=("Not A Name",))


def test_the_command_refuses_before_reaching_kafka() -> None:
    result = CliRunner().invoke(cli, ["cdn", "purge", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "exactly one of --url" in result.output


def test_status_shows_each_provider_and_the_newest_purges() -> None:
    health = [
        {"check": "fastly", "status": "fail", "output": "HTTP 503, expected 200-399"},
        {"check": "cloudflare", "status": "pass", "output": "answered in 12 ms"},
    ]
    purges = [
        {
            "idempotency_key": purge_key("deploy-9"),
            "integration": purge_integration("fastly"),
            "result": "failed",
            "attempts": 4,
            "error": "retries_exhausted: HTTP 503",
            "finished_at": T0,
        }
    ]
    text = render_status(health, purges)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["cloudflare", "pass"]
    assert lines[2].split()[:2] == ["fastly", "fail"]
    assert lines[4].split()[1:5] == ["deploy-9", "fastly", "failed", "attempts=4"]
    assert "retries_exhausted: HTTP 503" in lines[4]


def test_status_says_why_a_table_is_missing() -> None:
    text = render_status("no provider is probed", [])
    assert "no provider is probed" in text
    assert text.splitlines()[-1].strip() == "none"
