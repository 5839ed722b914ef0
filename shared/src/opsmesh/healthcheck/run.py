"""What one health-check run checks, and running it: every probe at once, each bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from opsmesh.healthcheck import probes
from opsmesh.healthcheck.report import CheckResult
from opsmesh.topics import DLQ

# The five services at their default ports (each service's HTTP port setting).
DEFAULT_SERVICES: Mapping[str, str] = {
    "metrics-ingest": "http://127.0.0.1:8081",
    "alert-engine": "http://127.0.0.1:8082",
    "notifier": "http://127.0.0.1:8083",
    "query-analyzer": "http://127.0.0.1:8084",
    "health-aggregator": "http://127.0.0.1:8085",
}


@dataclass(frozen=True, slots=True)
class CheckPlan:
    services: Mapping[str, str]  # name -> base URL; /health/ready is asked
    kafka: Mapping[str, Any]  # aiokafka connection options
    pg_dsn: str
    redis_url: str
    max_lag: int
    max_dead_letters: int
    timeout_s: float


async def run_checks(plan: CheckPlan) -> list[CheckResult]:
    timeout = aiohttp.ClientTimeout(total=plan.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        single = [
            *(
                probes.timed("service", name, probes.service_probe(http, url), plan.timeout_s)
                for name, url in plan.services.items()
            ),
            probes.timed(
                "broker",
                str(plan.kafka.get("bootstrap_servers", "")),
                probes.broker_probe(plan.kafka),
                plan.timeout_s,
            ),
            probes.timed(
                "database",
                probes.database_target(plan.pg_dsn),
                probes.database_probe(plan.pg_dsn),
                plan.timeout_s,
            ),
            probes.timed(
                "redis",
                probes.redis_target(plan.redis_url),
                probes.redis_probe(plan.redis_url),
                plan.timeout_s,
            ),
            probes.timed(
                "dlq",
                DLQ.name,
                probes.dlq_probe(plan.kafka, plan.max_dead_letters),
                plan.timeout_s,
            ),
        ]
        results, lags = await asyncio.gather(
            asyncio.gather(*single), probes.lag_checks(plan.kafka, plan.max_lag, plan.timeout_s)
        )
    return [*results, *lags]
