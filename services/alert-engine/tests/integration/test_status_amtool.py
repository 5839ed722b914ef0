"""``/api/v2/status`` read by the real amtool (Debian's prometheus-alertmanager): with a
token from ``--http.config.file`` it shows the configuration, every secret as
``<secret>``, and parses it back for ``config routes``; without one it is refused. The
Alertmanager release it reports matches amtool's, so amtool does not warn, and the uptime
is the instant the service started."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from alert_engine.api.auth import ApiTokens, auth_middleware
from alert_engine.api.status import (
    DEFAULT_COMPAT_VERSION,
    OPSMESH_VERSION,
    ServerStatus,
    build_info,
)
from alert_engine.api.v2 import AlertmanagerApi
from alert_engine.bootstrap import SERVICES
from alert_engine.core.amconfig import EngineConfig, parse_config
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

TOKEN = "status-reader-token-0123456789"
CONFIG = textwrap.dedent(
    """\
    global:
      resolve_timeout: 5m
      slack_api_url: https://hooks.slack.com/services/T0/B0/s3cr3t-global
    route:
      receiver: pager
      group_by: [alertname]
      routes:
        - receiver: chat
          matchers: ['team="db"']
    receivers:
      - name: pager
        pagerduty_configs:
          - routing_key: s3cr3t-routing-key
      - name: chat
        slack_configs:
          - api_url: https://hooks.slack.com/services/T0/B1/s3cr3t-slack
            channel: '#db'
        webhook_configs:
          - url: https://hooks.example/s3cr3t-webhook
            http_config:
              authorization: {credentials: s3cr3t-bearer}
    """
)


@dataclass
class _Engine:
    config: EngineConfig


@dataclass
class _State:
    engine: _Engine


@dataclass
class _Services:
    """What the status handlers read of ``request.app[SERVICES]``."""

    state: _State


STARTED = 1_790_000_000.25  # the instant the service was built, on its clock


@asynccontextmanager
async def serve(config: str, compat_version: str = DEFAULT_COMPAT_VERSION) -> AsyncIterator[str]:
    clock = FakeClock(STARTED)
    status = ServerStatus(build_info(compat_version), started_at=clock.now())
    state = _State(_Engine(parse_config(config)))
    app = web.Application(
        middlewares=[auth_middleware(ApiTokens.parse(f"{TOKEN}:read"), read_requires_token=False)]
    )
    AlertmanagerApi(status).register(app)
    app[SERVICES] = _Services(state)  # type: ignore[assignment]
    clock.advance(3600)  # requests come later: the uptime stays the start instant
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with serve(getattr(request, "param", CONFIG)) as url:
        yield url


@pytest.fixture
def http_config(tmp_path: Path) -> Path:
    path = tmp_path / "http.yml"
    path.write_text(f"authorization:\n  credentials: {TOKEN}\n")
    return path


async def amtool_streams(
    url: str, *args: str, http_config: Path | None = None
) -> tuple[int, str, str]:
    """amtool's exit code, stdout and stderr."""
    auth = [f"--http.config.file={http_config}"] if http_config else []
    process = await asyncio.create_subprocess_exec(
        "amtool",
        f"--alertmanager.url={url}",
        *auth,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    return process.returncode or 0, stdout.decode(), stderr.decode()


async def amtool(url: str, *args: str, http_config: Path | None = None) -> tuple[int, str]:
    code, stdout, stderr = await amtool_streams(url, *args, http_config=http_config)
    return code, stdout + stderr


def amtool_release() -> str:
    """``amtool, version 0.25.0 (branch: ...`` gives ``0.25.0``."""
    shown = subprocess.run(
        ["amtool", "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    found = re.search(r"version (\d+\.\d+\.\d+)", shown.stdout + shown.stderr)
    assert found, shown
    return found[1]


def major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


async def test_amtool_shows_the_configuration_with_secrets_masked(
    server: str, http_config: Path
) -> None:
    code, shown = await amtool(server, "config", "show", http_config=http_config)
    assert code == 0, shown
    assert "s3cr3t" not in shown
    assert shown.count("<secret>") == 5
    assert "routing_key: <secret>" in shown
    assert 'team="db"' in shown


# amtool 0.25 parses config.original back into its own Config, where a webhook url was
# still a plain URL: the engine shows it as https://host/<secret>, which it reads.
async def test_amtool_reads_the_masked_configuration_back(server: str, http_config: Path) -> None:
    code, routes = await amtool(server, "config", "routes", "show", http_config=http_config)
    assert code == 0, routes
    assert "chat" in routes
    assert 'team="db"' in routes


async def test_amtool_without_a_token_is_refused(server: str) -> None:
    code, output = await amtool(server, "config", "show")
    assert code != 0
    assert "s3cr3t" not in output
    assert "401" in output or "Unauthorized" in output, output


def test_the_default_release_matches_the_shipped_amtool() -> None:
    # A matching build as amtool decides it (cli/root.go): the same major.minor.
    assert major_minor(DEFAULT_COMPAT_VERSION) == major_minor(amtool_release())


@pytest.mark.parametrize(
    "args", [("config", "show"), ("config", "routes", "show"), ("cluster", "show")]
)
async def test_amtool_prints_no_version_warning(
    server: str, http_config: Path, args: tuple[str, ...]
) -> None:
    code, stdout, stderr = await amtool_streams(server, *args, http_config=http_config)
    assert code == 0, stdout + stderr
    assert stderr == ""


async def test_amtool_warns_when_the_engine_claims_another_release(http_config: Path) -> None:
    # The control for the test above: amtool did read the status and compare the versions.
    async with serve(CONFIG, compat_version="0.34.0") as url:
        code, stdout, stderr = await amtool_streams(url, "config", "show", http_config=http_config)
    assert code == 0, stdout + stderr
    warning = f"amtool version ({amtool_release()}) and alertmanager version (0.34.0) are different"
    assert warning in stderr


async def test_amtool_reads_the_version_and_the_start_instant(
    server: str, http_config: Path
) -> None:
    code, stdout, stderr = await amtool_streams(
        server, "--output=json", "config", "show", http_config=http_config
    )
    assert code == 0, stdout + stderr
    status = json.loads(stdout)
    assert status["versionInfo"] == {
        "version": DEFAULT_COMPAT_VERSION,
        "revision": f"opsmesh-alert-engine {OPSMESH_VERSION}",
        "branch": "opsmesh",
        "buildUser": "",
        "buildDate": "",
        "goVersion": status["versionInfo"]["goVersion"],
    }
    assert re.fullmatch(r"python3\.\d+\.\d+", status["versionInfo"]["goVersion"])
    uptime = datetime.fromisoformat(status["uptime"].replace("Z", "+00:00"))
    assert uptime == datetime.fromtimestamp(STARTED, UTC)
