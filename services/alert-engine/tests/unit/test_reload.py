"""``POST /-/reload`` and the file watch: a valid file replaces the configuration (groups
kept, ``engine.reconfigure``), an invalid one is refused with its reason and the loaded
configuration stays; ``alertmanager_config_last_reload_successful`` says which."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from alert_engine.api.auth import ApiTokens, auth_middleware
from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.amconfig import EngineConfig, parse_config
from alert_engine.core.engine import Engine, ReconfigureOutcome
from alert_engine.core.silences import Silences
from alert_engine.pipeline.reload import config_reloader
from opsmesh.reload import ConfigReloader, file_hash
from opsmesh.web.reload import ReloadApi
from opsmesh_dev.testing.clock import FakeClock

TOKEN = "reload-writer-token-0123456789"
GOOD = textwrap.dedent(
    """\
    route: {receiver: a, group_by: [alertname]}
    receivers: [{name: a}]
    """
)
CHANGED = GOOD.replace("receiver: a,", "receiver: b,").replace("{name: a}", "{name: b}")


class _State:
    def __init__(self, config: EngineConfig) -> None:
        self.engine = Engine(config, ActiveAlerts(), Silences())

    async def reconfigure(self, config: EngineConfig) -> ReconfigureOutcome:
        return self.engine.reconfigure(config, self.engine.alerts.all(), 0.0, lambda _key: True)


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[str, Path, _State, CollectorRegistry, ConfigReloader[EngineConfig]]]:
    path = tmp_path / "alertmanager.yml"
    path.write_text(GOOD)
    state = _State(parse_config(GOOD))
    registry = CollectorRegistry()
    reloader = config_reloader(
        path,
        state,  # type: ignore[arg-type]
        loaded_hash=file_hash(path),
        clock=FakeClock(1000.0),
        registry=registry,
    )
    app = web.Application(
        middlewares=[auth_middleware(ApiTokens.parse(f"{TOKEN}:write"), read_requires_token=False)]
    )
    ReloadApi(reloader, no_file="none").register(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), path, state, registry, reloader
    finally:
        await server.close()


def _successful(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("alertmanager_config_last_reload_successful")


async def test_reload_applies_a_valid_file_and_refuses_an_invalid_one(world: tuple) -> None:
    url, path, state, registry, _ = world
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/-/reload") as refused:
            assert refused.status == 401
        path.write_text(CHANGED)
        async with session.post(f"{url}/-/reload", headers=auth) as ok:
            assert ok.status == 200, await ok.text()
        assert state.engine.config.route.receiver == "b"
        assert _successful(registry) == 1
        path.write_text(CHANGED + "inhibit_rules: [{source_matchers: ['a=~\"(']}]\n")
        async with session.post(f"{url}/-/reload", headers=auth) as bad:
            assert bad.status == 400
            assert "failed to reload config" in await bad.text()
        assert state.engine.config.route.receiver == "b"  # the loaded one stays
        assert _successful(registry) == 0


async def test_the_watch_follows_the_files_content(world: tuple) -> None:
    _, path, state, registry, reloader = world
    await reloader.check()
    assert state.engine.config.route.receiver == "a"
    path.write_text(CHANGED)
    await reloader.check()
    assert state.engine.config.route.receiver == "b"
    path.write_text("route: {receiver: nobody}\nreceivers: [{name: b}]\n")
    await reloader.check()
    assert state.engine.config.route.receiver == "b"
    assert _successful(registry) == 0
    assert (
        registry.get_sample_value(
            "alert_engine_config_reloads_total", {"trigger": "file_changed", "outcome": "refused"}
        )
        == 1
    )
    await reloader.check()  # the same refused content is not tried (and logged) again
    assert (
        registry.get_sample_value(
            "alert_engine_config_reloads_total", {"trigger": "file_changed", "outcome": "refused"}
        )
        == 1
    )


async def test_a_valid_file_postgresql_cannot_serve_is_retried_not_refused(world: tuple) -> None:
    url, path, state, registry, reloader = world
    real = state.reconfigure
    down = True

    async def reconfigure(config: EngineConfig) -> ReconfigureOutcome:
        if down:  # the groups are rebuilt from durable rows: the database must answer
            raise psycopg.OperationalError("connection refused")
        return await real(config)

    state.reconfigure = reconfigure
    path.write_text(CHANGED)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/-/reload", headers=auth) as unavailable,
    ):
        assert unavailable.status == 503
        assert "try again" in await unavailable.text()
    await reloader.check()  # the watch: not marked refused, so tried again
    assert state.engine.config.route.receiver == "a"
    assert _successful(registry) == 0
    down = False
    await reloader.check()
    assert state.engine.config.route.receiver == "b"
    assert _successful(registry) == 1
    assert (
        registry.get_sample_value(
            "alert_engine_config_reloads_total",
            {"trigger": "file_changed", "outcome": "unavailable"},
        )
        == 1
    )
