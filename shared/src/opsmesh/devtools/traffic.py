"""Demo traffic: an error ratio that trips the demo alert and then recovers, heartbeats
from a few instances, and some slow queries. Loops until stopped."""

from __future__ import annotations

import argparse
import asyncio
import random
import signal

from opsmesh.catalogue import HTTP_ERROR_RATIO
from opsmesh.clock import SystemClock
from opsmesh.events import (
    HealthReported,
    HealthStatus,
    MetricSampled,
    SlowQueryObserved,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import HEALTH, METRICS, SLOW_QUERIES

# One cycle: healthy, then a burst of errors long enough to fire, then healthy again.
HEALTHY_S = 20.0
INCIDENT_S = 25.0
CYCLE_S = HEALTHY_S + INCIDENT_S + HEALTHY_S

_QUERIES = [
    "SELECT * FROM orders WHERE customer_id = {n}",
    "SELECT id, total FROM orders WHERE status = 'open'"
    " AND created_at > now() - interval '{n} days'",
    "UPDATE carts SET updated_at = now() WHERE id = {n}",
]


def error_ratio(elapsed: float, rng: random.Random) -> float:
    phase = elapsed % CYCLE_S
    if HEALTHY_S <= phase < HEALTHY_S + INCIDENT_S:
        return 0.2 + rng.uniform(0, 0.05)
    return 0.01 + rng.uniform(0, 0.01)


async def run(bootstrap: str, interval_s: float = 0.5) -> None:
    connection = {"bootstrap_servers": bootstrap}
    await ensure_topics(connection)
    clock = SystemClock()
    producer = EventProducer(connection, source="/opsmesh/demo-traffic", clock=clock)
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(7)  # noqa: S311 - demo data, not security
    started = clock.now()
    try:
        while not stop.is_set():
            now = clock.now()
            labels = {"service": "checkout", "env": "demo"}
            items = [
                Outgoing(
                    METRICS,
                    series_id(HTTP_ERROR_RATIO.name, labels),
                    MetricSampled(
                        name=HTTP_ERROR_RATIO.name,
                        kind=HTTP_ERROR_RATIO.metric_kind,
                        value=error_ratio(now - started, rng),
                        labels=labels,
                        sampled_at=now,
                    ),
                )
            ]
            for instance in ("checkout-1", "checkout-2", "payments-1"):
                items.append(
                    Outgoing(
                        HEALTH,
                        f"{instance.split('-')[0]}/{instance}",
                        HealthReported(
                            service=instance.split("-")[0],
                            instance=instance,
                            check="heartbeat",
                            status=HealthStatus.PASS,
                            ttl_s=10,
                            reported_at=now,
                        ),
                    )
                )
            template = rng.choice(_QUERIES)
            items.append(
                Outgoing(
                    SLOW_QUERIES,
                    "shop",
                    SlowQueryObserved(
                        sql=template.format(n=rng.randint(1, 999)),
                        duration_ms=rng.uniform(150, 900),
                        rows=rng.randint(0, 50),
                        database="shop",
                        application="checkout",
                        started_at=now,
                    ),
                )
            )
            await producer.publish_many(items)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="opsmesh demo traffic")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    asyncio.run(run(args.bootstrap, args.interval))


if __name__ == "__main__":
    main()
