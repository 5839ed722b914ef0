"""``opsmesh.reload``: SIGHUP reloads (a refused file is only logged and counted), the
watch reloads a changed content once and leaves a refused one until it changes again."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from opsmesh.reload import (
    ConfigReloader,
    ReloadFailed,
    ReloadMetrics,
    ReloadTrigger,
    SighupReload,
    file_hash,
)
from opsmesh_dev.testing.clock import FakeClock


class World:
    def __init__(self, path: Path) -> None:
        self.applied: list[str] = []
        self.registry = CollectorRegistry()
        self.done = asyncio.Event()
        self.reloader = ConfigReloader(
            path,
            parse=self.parse,
            apply=self.apply,
            loaded_hash=file_hash(path),
            clock=FakeClock(100.0),
            metrics=ReloadMetrics(self.registry, prefix="svc", service="svc"),
        )

    def parse(self, content: bytes, path: Path) -> str:
        text = content.decode()
        if text.startswith("unparsable"):
            raise ReloadFailed(f"{path}: line 1: not a configuration")
        return text

    async def apply(self, text: str) -> Mapping[str, object]:
        if text.startswith("bad"):
            # Refused while applying (as a template that does not load): counted before
            # the task next yields, so before a waiter on ``done`` runs.
            self.done.set()
            raise ReloadFailed("templates: do not load")
        self.applied.append(text)
        self.done.set()
        return {"length": len(text)}

    def count(self, trigger: ReloadTrigger, outcome: str) -> float | None:
        return self.registry.get_sample_value(
            "svc_config_reloads_total", {"trigger": trigger.value, "outcome": outcome}
        )


async def test_sighup_reloads_and_a_refused_file_is_only_counted(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("one")
    world = World(path)
    loop = asyncio.get_running_loop()
    hup = SighupReload(world.reloader)
    hup.install(loop)
    try:
        path.write_text("two")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(world.done.wait(), 5)
        assert world.applied == ["two"]
        world.done.clear()
        path.write_text("bad")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(world.done.wait(), 5)
    finally:
        hup.remove(loop)
    assert world.applied == ["two"]
    assert world.count(ReloadTrigger.SIGNAL, "applied") == 1
    assert world.count(ReloadTrigger.SIGNAL, "refused") == 1
    assert world.registry.get_sample_value("svc_config_last_reload_successful") == 0


async def test_the_watch_reloads_a_change_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("one")
    world = World(path)
    await world.reloader.check()
    assert world.applied == []  # the loaded content
    path.write_text("two")
    await world.reloader.check()
    await world.reloader.check()
    assert world.applied == ["two"]
    path.write_text("unparsable")
    await world.reloader.check()
    await world.reloader.check()
    assert world.count(ReloadTrigger.FILE_CHANGED, "refused") == 1
    path.unlink()
    await world.reloader.check()  # a missing file is not a change to load
    with pytest.raises(ReloadFailed, match="cannot read"):
        await world.reloader.reload(ReloadTrigger.API)
    assert world.applied == ["two"]
