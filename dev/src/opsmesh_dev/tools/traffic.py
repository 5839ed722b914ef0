"""Demo traffic: an error ratio that trips the demo alert and then recovers, heartbeats
from a few instances, slow queries against the demo shop (``opsmesh_dev.tools.demo_db``;
one lacks an index) and, every few seconds, a page that loads its customers one query
per order (N+1). Loops until stopped."""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
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
from opsmesh_dev.tools.demo_db import CUSTOMER_BY_ID, DEMO_DATABASE, ORDERS_OF_CUSTOMER

# One cycle: healthy, then a burst of errors long enough to fire, then healthy again.
HEALTHY_S = 20.0
INCIDENT_S = 25.0
CYCLE_S = HEALTHY_S + INCIDENT_S + HEALTHY_S

_QUERIES = [
    ORDERS_OF_CUSTOMER,
    "SELECT id, total FROM orders WHERE status = 'pending' AND total > {n}",
    "UPDATE customers SET created_at = now() WHERE id = {n}",
]
# A page of recent orders, then each order's customer on its own (N+1).
RECENT_ORDERS = "SELECT id, customer_id FROM orders ORDER BY created_at DESC LIMIT {n}"
PAGE_SIZE = 8
N_PLUS_ONE_EVERY = 10  # ticks


def n_plus_one_page(now: float, rng: random.Random) -> list[SlowQueryObserved]:
    """One request's queries, as the producer SDK reports them: one trace, one parent span."""
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    queries = [RECENT_ORDERS.format(n=PAGE_SIZE)] + [
        CUSTOMER_BY_ID.format(n=rng.randint(1, 200_000)) for _ in range(PAGE_SIZE)
    ]
    return [
        SlowQueryObserved(
            sql=text,
            duration_ms=rng.uniform(8, 15),
            rows=1,
            database=DEMO_DATABASE,
            application="checkout",
            trace_id=trace_id,
            span_id=secrets.token_hex(8),
            parent_span_id=parent,
            started_at=now + index * 0.02,
        )
        for index, text in enumerate(queries)
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
    tick = 0
    try:
        while not stop.is_set():
            tick += 1
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
                    DEMO_DATABASE,
                    SlowQueryObserved(
                        sql=template.format(n=rng.randint(1, 999)),
                        duration_ms=rng.uniform(150, 900),
                        rows=rng.randint(0, 50),
                        database=DEMO_DATABASE,
                        application="checkout",
                        started_at=now,
                    ),
                )
            )
            if tick % N_PLUS_ONE_EVERY == 0:
                items.extend(
                    Outgoing(SLOW_QUERIES, DEMO_DATABASE, query)
                    for query in n_plus_one_page(now, rng)
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
