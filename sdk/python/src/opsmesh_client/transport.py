"""Transports: how the sending thread hands records to the mesh.

Both run only on the SDK's own thread; the application's threads never reach them.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opsmesh_client.outbox import DropReason
from opsmesh_client.wire import Kind, Record

Failed = Callable[[DropReason, int], None]
log = logging.getLogger("opsmesh_client")


class Transport(Protocol):
    def send(self, records: Sequence[Record]) -> None:
        """Hand records over; failures are reported to the ``failed`` callback given at
        construction, never raised."""

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for records in flight; returns how many remain."""

    def close(self, timeout_s: float) -> None: ...


class KafkaTransport:
    """librdkafka (confluent-kafka) batches, compresses and retries in its own C thread:
    ``produce`` only appends to its queue, so the sending thread never waits on a broker,
    and a record not delivered within ``send_timeout_s`` is reported and counted."""

    def __init__(
        self,
        bootstrap: str,
        *,
        source: str,
        topics: Mapping[Kind, str],
        failed: Failed,
        queue_size: int,
        send_timeout_s: float,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Producer  # noqa: PLC0415 - only when Kafka is used

        self._failed = failed
        self._source = source
        self._topics = topics
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": f"opsmesh-client/{source}",
            "linger.ms": 50,
            # Uncompressed, as the mesh's own producers write: its consumers (aiokafka
            # without the lz4/snappy/zstd libraries) dead-letter batches in other codecs.
            "compression.type": "none",
            # Java's (and aiokafka's) partitioner, not librdkafka's CRC32 default: the mesh
            # owns keys by partition (health-aggregator rebuilds exactly its partitions'
            # checks), computed with murmur2 (opsmesh.topics.partition_for).
            "partitioner": "murmur2_random",
            "acks": "all",
            # librdkafka's queue holds what is in flight to the broker; at least its own
            # default, so a burst of a busy application (10k queries/s) is not dropped
            # while the previous batch waits for its acks. Bounded all the same.
            "queue.buffering.max.messages": max(queue_size, 100_000),
            "message.timeout.ms": int(send_timeout_s * 1000),
            "logger": logging.getLogger("opsmesh_client.kafka"),
            # Only failures are counted: a report per delivered record would cost the
            # sending thread a Python call per record for nothing.
            "delivery.report.only.error": True,
            "on_delivery": self._delivered,
        }
        config.update(extra or {})
        self._producer = Producer(config)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._failed(DropReason.SEND_FAILED, 1)

    def send(self, records: Sequence[Record]) -> None:
        for index, record in enumerate(records):
            try:
                self._producer.produce(
                    self._topics[record.kind],
                    value=record.value(),
                    key=record.key.encode(),
                    headers=record.headers(self._source),
                )
            except BufferError:
                # librdkafka's own queue is full: the broker is gone for a while.
                self._failed(DropReason.TRANSPORT_FULL, len(records) - index)
                break
            except (ValueError, TypeError):  # a record librdkafka refuses (too large ...)
                self._failed(DropReason.REJECTED, 1)
        self._producer.poll(0)  # serve delivery reports

    def flush(self, timeout_s: float) -> int:
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float) -> None:
        remaining = self.flush(timeout_s)
        if remaining:
            self._failed(DropReason.SEND_FAILED, remaining)


# The mesh's HTTP ingest endpoint of each kind and the field its batch goes in.
HTTP_PATHS: Mapping[Kind, tuple[str, str]] = {
    Kind.METRIC: ("/api/v1/metrics", "samples"),
    Kind.SLOW_QUERY: ("/api/v1/slow-queries", "events"),
    Kind.HEALTH: ("/api/v1/health-reports", "events"),
    Kind.PROFILE: ("/api/v1/profiles", "events"),
}
MAX_HTTP_BATCH = 1000


def http_body(kind: Kind, records: Sequence[Record]) -> tuple[str, bytes]:
    """The endpoint path and JSON body that carry ``records`` of one kind."""
    path, field = HTTP_PATHS[kind]
    return path, json.dumps({field: [r.body for r in records]}, allow_nan=False).encode()


_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}


class HttpTransport:
    """One POST per kind and batch, bearer-authenticated; a transient failure (connection,
    5xx, 429) is tried once more, a rejection (other 4xx) is counted and not retried."""

    def __init__(self, base_url: str, *, token: str, failed: Failed, timeout_s: float) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._failed = failed
        self._timeout_s = timeout_s

    def send(self, records: Sequence[Record]) -> None:
        by_kind: dict[Kind, list[Record]] = {}
        for record in records:
            by_kind.setdefault(record.kind, []).append(record)
        for kind, batch in by_kind.items():
            for start in range(0, len(batch), MAX_HTTP_BATCH):
                self._post(kind, batch[start : start + MAX_HTTP_BATCH])

    def _post(self, kind: Kind, batch: Sequence[Record]) -> None:
        path, body = http_body(kind, batch)
        request = urllib.request.Request(  # noqa: S310 - the configured mesh URL
            self._base + path,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"},
        )
        for attempt in (1, 2):
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:  # noqa: S310
                    self._count_rejected(answer.read())
                    return
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code not in _TRANSIENT:
                    log.warning(
                        "the mesh refused %d %s records: HTTP %d", len(batch), kind, exc.code
                    )
                    self._failed(DropReason.REJECTED, len(batch))
                    return
                failure = f"HTTP {exc.code}"
            except (OSError, TimeoutError) as exc:
                failure = type(exc).__name__
            if attempt == 2:
                log.warning("could not send %d %s records: %s", len(batch), kind, failure)
                self._failed(DropReason.SEND_FAILED, len(batch))

    def _count_rejected(self, answer: bytes) -> None:
        """A 202 names the records the mesh rejected one by one."""
        try:
            rejected = json.loads(answer or b"{}").get("rejected") or []
        except (ValueError, AttributeError):
            return
        if rejected:
            self._failed(DropReason.REJECTED, len(rejected))

    def flush(self, timeout_s: float) -> int:
        return 0  # each send returns once answered

    def close(self, timeout_s: float) -> None:
        return None


class Disabled:
    """``enabled=False`` (``OPSMESH_ENABLED=0``): the SDK's calls stay cheap and send nothing."""

    def send(self, records: Sequence[Record]) -> None:
        return None

    def flush(self, timeout_s: float) -> int:
        return 0

    def close(self, timeout_s: float) -> None:
        return None
