"""Readiness answers within its bound even when a probe is slow to give up: a check stuck
in I/O whose cancellation itself waits (psycopg cancelling a query on a hung server) is
reported as timed out, not waited for."""

from __future__ import annotations

import asyncio

from aiohttp import ClientTimeout
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from opsmesh.web.app import ReadinessCheck, ServiceSpec, init_app, run_checks


async def test_a_probe_that_will_not_unwind_is_reported_not_awaited() -> None:
    release = asyncio.Event()
    unwound = asyncio.Event()

    async def hung() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # the cancellation itself waits on the hung server
            unwound.set()
            raise

    async def fine() -> None:
        return None

    checks = [ReadinessCheck("postgres", hung, timeout_s=0.2), ReadinessCheck("kafka", fine)]
    app = init_app(ServiceSpec(name="t", registry=CollectorRegistry(), readiness=lambda: checks))
    client = TestClient(TestServer(app), timeout=ClientTimeout(total=10))
    await client.start_server()
    try:
        response = await client.get("/health/ready")
        body = await response.json()
        assert response.status == 503
        assert body["checks"] == {"postgres": "timeout after 0.2s", "kafka": "ok"}
        assert not unwound.is_set(), "answered while the probe was still unwinding"
    finally:
        release.set()
        await asyncio.wait_for(unwound.wait(), timeout=10)
        await client.close()


async def test_run_checks_names_each_result_in_order() -> None:
    async def fine() -> None:
        return None

    async def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    async def slow() -> None:
        await asyncio.Event().wait()

    checks = [
        ReadinessCheck("kafka", fine),
        ReadinessCheck("postgres", refused),
        ReadinessCheck("redis", slow, timeout_s=0.05),
    ]
    assert await run_checks(checks) == [
        ("kafka", "ok"),
        ("postgres", "error: ConnectionRefusedError: connection refused"),
        ("redis", "timeout after 0.05s"),
    ]
