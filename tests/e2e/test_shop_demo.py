"""The demo shop (``examples/shop``, a Django application) as a real producer: its N+1
page, requested over HTTP from the running shop, goes through the SDK's Django middleware
and execute_wrapper and real Kafka into query-analyzer, whose N+1 finding fires the
built-in ``NPlusOneDetected`` rule, and the alert's notification reaches the webhook sink
through alert-engine and the notifier. The checkout's profile is readable from
query-analyzer's ``/api/v1/profiles``, and the shop's heartbeat and database check reach
health-aggregator.

The shop runs as ``opsmesh up`` runs it, a server process of its own (``python -m
examples.shop serve``): Django's settings are configured once per process, and the SDK's
Django tests configure this process's for an application of theirs.

The world is test_builtin_rules' (a broker of its own, the five services, the installed
rules with their timings shortened, the application database query-analyzer plans on);
this module starts its own.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsmesh_dev.infra.process import free_port, port_open, spawn, terminate, wait_until
from tests.e2e import test_builtin_rules as builtin
from tests.e2e.test_builtin_rules import World, drive, notified
from tests.fixtures.kafka import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPOSITORY = Path(__file__).resolve().parents[2]

# The world's fixtures, as this module's own (module-scoped: a world for this module).
rule_files = builtin.rule_files
sink = builtin.sink
edges = builtin.edges
started_world = builtin.started_world
world = builtin.world


class Shop:
    def __init__(self, url: str, service: str, log: Path) -> None:
        self.url = url
        self.service = service
        self.log = log


@pytest.fixture
def shop(world: World, unique: str, tmp_path: Path) -> Iterator[Shop]:
    """The shop serving on the world's application database, sending to its broker."""
    service = f"shop-{unique}"
    port = free_port()
    log = tmp_path / "shop.log"
    process = spawn(
        [sys.executable, "-m", "examples.shop", "serve", "--port", str(port)],
        log_file=log,
        cwd=REPOSITORY,
        env={
            "SHOP_DSN": world.app_dsn,
            "OPSMESH_SERVICE": service,
            "OPSMESH_KAFKA_BOOTSTRAP": world.bootstrap,
            "OPSMESH_ENVIRONMENT": "e2e",
            "OPSMESH_FLUSH_INTERVAL_S": "0.05",
            "OPSMESH_HEARTBEAT_INTERVAL_S": "1",
            "OPSMESH_PROFILE_SLOW_MS": "1",  # every request: the checkout's is read below
        },
    )
    try:
        # The first start migrates: 200,000 orders are written before it listens.
        wait_until(lambda: port_open(port), timeout_s=120, what="the shop", process=process)
        yield Shop(f"http://127.0.0.1:{port}", service, log)
    finally:
        terminate(process)
    assert process.returncode == 0, log.read_text()[-3000:]


async def test_the_shops_n_plus_one_page_notifies_and_its_checkout_is_profiled(
    world: World, shop: Shop
) -> None:
    async with httpx.AsyncClient(base_url=shop.url, timeout=30) as http:

        async def ready() -> httpx.Response:
            return await http.get("/health/ready")

        probe = await eventually(
            ready, until=lambda r: r.status_code == 200, what="the shop's readiness"
        )
        assert probe.json()["status"] == "pass"
        assert (await http.get("/health/live")).status_code == 200

        page = await http.get("/customers/")
        assert page.status_code == 200
        assert len(page.json()["customers"]) == 20
        assert (await http.get("/checkout/7/")).status_code == 200
        assert (await http.get("/boom/")).status_code == 500

    mine = {"alertname": "NPlusOneDetected", "application": shop.service}
    await drive(notified(world.sink, "firing", **mine), what="NPlusOneDetected for the shop")
    (firing, *_) = world.sink.notifications(**mine)
    (alert,) = firing["alerts"]
    assert alert["labels"]["database"] == world.app_database
    assert alert["labels"]["finding"] == "n_plus_one"
    assert "20 times per request" in alert["annotations"]["summary"]

    def profiles() -> Any:
        return world.mesh.get_json("query-analyzer", f"/api/v1/profiles?service={shop.service}")

    routes = await eventually(
        lambda: asyncio.to_thread(profiles),
        until=lambda rows: "checkout/<int:cart>/" in {r["route"] for r in rows},
        what="the checkout's profile in query-analyzer",
    )
    checkout = next(r for r in routes if r["route"] == "checkout/<int:cart>/")
    assert checkout["functions"][0]["function"] == "checkout_totals"

    async with httpx.AsyncClient(base_url=world.mesh.running["health-aggregator"].url) as http:

        async def board() -> httpx.Response:
            return await http.get(f"/api/v1/services/{shop.service}")

        health = await eventually(
            board,
            until=lambda r: (
                r.status_code == 200 and any(c["check"] == "database" for c in r.json()["checks"])
            ),
            what="the shop's database check on the health board",
        )
    (database,) = [c for c in health.json()["checks"] if c["check"] == "database"]
    assert database["status"] == "pass"
