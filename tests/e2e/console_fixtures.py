"""The console as a process beside the e2e mesh, the browser that drives it, and a
pending rule alert, for the console's seam and browser tests."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator

import pytest

from opsmesh.events import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import SIGNALS
from opsmesh_dev.tools.mesh import CONSOLE, Mesh
from tests.e2e.conftest import API_TOKEN

# Debian's Chromium, driven by Playwright; no browser of Playwright's own is downloaded.
CHROMIUM = "/usr/bin/chromium"
# Headless, and without the background networking (updates, sync) that reaches for
# outside hosts at start, which a closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def console(mesh: Mesh) -> Iterator[str]:
    """The console's URL; it reads the mesh's services at their ports."""
    mesh.start([CONSOLE.name])
    try:
        yield mesh.running[CONSOLE.name].url
    finally:
        mesh.stop(CONSOLE.name)


def post_rule(mesh: Mesh, text: str) -> None:
    req = urllib.request.Request(
        f"{mesh.running['alert-engine'].url}/api/v1/rules", data=text.encode(), method="POST"
    )
    req.add_header("Content-Type", "application/yaml")
    req.add_header("Authorization", f"Bearer {API_TOKEN}")
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 201


def delete_rules(mesh: Mesh, group: str) -> None:
    req = urllib.request.Request(
        f"{mesh.running['alert-engine'].url}/api/v1/rules/{group}", method="DELETE"
    )
    req.add_header("Authorization", f"Bearer {API_TOKEN}")
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200


async def make_pending(mesh: Mesh, unique: str, name: str) -> str:
    """A rule with a long ``for`` and a signal that holds for it: a pending alert. Returns
    the rule group, to delete after."""
    group = f"console-pending-{unique}"
    rule = f"""
groups:
  - name: {group}
    rules:
      - alert: {name}
        signal: console_pending_{unique}
        op: ">"
        threshold: 1
        for: 1h
        labels: {{severity: warning}}
"""
    await asyncio.to_thread(post_rule, mesh, rule)
    producer = EventProducer(
        {"bootstrap_servers": mesh.endpoints.kafka_bootstrap}, source="/tests/e2e"
    )
    await producer.start()
    try:
        await producer.publish(
            Outgoing(
                SIGNALS,
                f"pending-{unique}",
                SignalObserved(
                    source=SignalSource.METRICS,
                    kind=SignalKind.ROLLUP,
                    name=f"console_pending_{unique}",
                    subject=f"pending-{unique}",
                    labels={"service": f"pending-{unique}"},
                    value=5.0,
                    observed_at=time.time(),
                ),
            )
        )
    finally:
        await producer.stop()
    return group
