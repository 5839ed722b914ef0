"""What trace context costs per record, with span export off (the default) and on.

No broker: the producer's ``send_raw`` is replaced by a stub that returns a finished
future, so the figures are the CPU the kit spends per record around the client.

- produce: ``EventProducer.enqueue`` per record: the baseline builds the CloudEvents
  headers without any ``traceparent`` (no context handling at all); "propagation" is the
  kit as shipped, continuing ``Outgoing.trace``; "new trace" starts one per record; "export
  on" records a PRODUCER span per record into the SDK's batch processor (an exporter that
  drops them).
- consume: ``Received.trace`` (find and parse the header), which handlers ask for only
  where they produce in response.
- rollup: ``Rollups.add`` per sample with the record's headers (read only when a sample
  opens a window) against without.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from metrics_ingest.rollup.windows import Rollups, WindowConfig
from opsmesh.events import MetricSampled
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka.handler import Received
from opsmesh.kafka.headers import Headers, cloudevent_headers
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.topics import METRICS
from opsmesh.tracing import Tracing, install
from opsmesh.tracing.context import new_trace
from opsmesh.tracing.setup import provider_for

RECORDS = 50_000
ROUNDS = 11


class _Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Message:
    __slots__ = ("headers", "key", "offset", "partition", "topic", "value")

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self.topic, self.partition, self.offset, self.key, self.value = "t", 0, 0, b"k", b""


def _stub(producer: EventProducer) -> None:
    loop = asyncio.get_running_loop()

    async def send_raw(*_: Any, **__: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        future.set_result(None)
        return future

    producer.send_raw = send_raw  # type: ignore[method-assign]


def _baseline(producer: EventProducer) -> None:
    """The producer without trace context: CloudEvents headers, no traceparent."""

    async def send(item: Outgoing) -> asyncio.Future[Any]:
        headers = cloudevent_headers(
            event_type=item.event.EVENT_TYPE,
            source="/bench",
            time_s=time.time(),
            trace=None,
            event_id=item.event_id,
        )
        return await producer.send_raw(item.topic.name, item.key.encode(), b"{}", headers, 0)

    producer._send = send  # type: ignore[method-assign]


def _items(trace: bool) -> list[Outgoing]:
    parent = new_trace() if trace else None
    event = MetricSampled(name="cpu", value=1.0, labels={"host": "a"}, sampled_at=1.0)
    return [
        Outgoing(METRICS, f"k{i}", event, trace=parent, partition=0, encoded=b"{}")
        for i in range(RECORDS)
    ]


async def _compare(variants: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median ns per record of each variant, rounds interleaved (A, B, C, A, B, C, ...)
    so that a busy neighbour on the machine slows every variant alike."""
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, run in variants.items():
            started = time.perf_counter()
            await run()
            timings[name].append((time.perf_counter() - started) / RECORDS * 1e9)
    return {name: statistics.median(found) for name, found in timings.items()}


async def produce() -> dict[str, float]:
    baseline = EventProducer({"bootstrap_servers": "127.0.0.1:1"}, source="/bench")
    _stub(baseline)
    _baseline(baseline)
    kit = EventProducer({"bootstrap_servers": "127.0.0.1:1"}, source="/bench")
    _stub(kit)
    traced, untraced = _items(True), _items(False)
    out = await _compare(
        {
            "baseline: headers, no traceparent": lambda: baseline.enqueue(traced),
            "export off: continue Outgoing.trace": lambda: kit.enqueue(traced),
            "export off: a new trace per record": lambda: kit.enqueue(untraced),
        }
    )
    old = install(Tracing(provider_for("bench", {}, _Drop())))
    try:
        out |= await _compare(
            {"export on: a PRODUCER span per record": lambda: kit.enqueue(traced)}
        )
    finally:
        install(old).shutdown()
    for producer in (baseline, kit):
        await producer.client.stop()
    return out


async def consume() -> dict[str, float]:
    headers = cloudevent_headers(
        event_type="dev.opsmesh.metric.sampled", source="/x", time_s=1.0, trace=new_trace()
    )
    event = MetricSampled(name="cpu", value=1.0, sampled_at=1.0)
    records = [Received(event, _Message(headers)) for _ in range(RECORDS)]

    async def ask() -> None:
        for record in records:
            record.trace  # noqa: B018 - the cost measured

    async def skip() -> None:
        for record in records:
            record.event  # noqa: B018

    return await _compare(
        {"baseline: a record's event": skip, "Received.trace (find + parse)": ask}
    )


async def rollup() -> dict[str, float]:
    headers = cloudevent_headers(
        event_type="dev.opsmesh.metric.sampled", source="/x", time_s=1.0, trace=new_trace()
    )
    series = 1_000
    samples = [
        MetricSampledFields(
            name="cpu", value=1.0, labels={"host": f"h{i % series}"}, sampled_at=i // series
        )
        for i in range(RECORDS)
    ]

    def feed(with_headers: bool) -> Callable[[], Any]:
        async def run() -> None:
            rollups = Rollups(WindowConfig((10.0, 60.0), 5.0, 5.0))
            given = headers if with_headers else None
            for offset, sample in enumerate(samples):
                rollups.add(sample, ("t", 0), offset, None, given)

        return run

    return await _compare(
        {
            "baseline: Rollups.add without headers": feed(False),
            "Rollups.add with the record's headers": feed(True),
        }
    )


async def main() -> None:
    print(f"{RECORDS} records per round, median of {ROUNDS} rounds, ns per record")
    for title, part in (("produce", produce), ("consume", consume), ("rollup", rollup)):
        figures = await part()
        base = next(iter(figures.values()))
        print(f"\n{title}")
        for name, ns in figures.items():
            print(f"  {name:42} {ns:8.0f} ns  (+{ns - base:.0f} ns)")


if __name__ == "__main__":
    asyncio.run(main())
