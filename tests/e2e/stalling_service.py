"""A tiny service for tests, run as a process like the real ones (``serve``): one Kafka
consumer whose handler's store is down for good, so the consumer stalls and then gives up,
and the process must exit non-zero. ``STALLING_MODE=raise``: a worker that fails at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from aiohttp import web
from pydantic import Field

from opsmesh.events import MetricSampled
from opsmesh.kafka import BatchResult, ConsumerConfig, Received, StatelessHandler
from opsmesh.runtime import Runtime
from opsmesh.service_main import serve
from opsmesh.settings import CommonSettings
from opsmesh.topics import METRICS
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "stalling"


class StallingSettings(CommonSettings):
    http_port: int = Field(alias="STALLING_HTTP_PORT")
    group: str = Field("tests.stalling", alias="STALLING_GROUP")
    mode: str = Field("stall", alias="STALLING_MODE")


class StoreDown(StatelessHandler):
    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        raise ConnectionRefusedError(111, "Connection refused (the store is down for good)")


def build(settings: StallingSettings) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings)

    async def fail_now(stop: asyncio.Event) -> None:
        raise RuntimeError("a worker bug")

    def workers() -> list[tuple[str, Worker]]:
        if settings.mode == "raise":
            return [("fails", fail_now)]
        config = ConsumerConfig(group_id=settings.group, topics=(METRICS,), retry_max_s=0.5)
        return [("consume", runtime.consumer(config, MetricSampled, StoreDown()))]

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx],
            readiness=runtime.readiness,
            workers=workers,
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("OPSMESH_HTTP_HOST", "127.0.0.1")
    serve(SERVICE, StallingSettings, build)
