"""Route out: accepted alerts → ``AlertsRouted`` records on ``opsmesh.alert-groups``.

Each alert goes to the group of every route it takes, on the partition of that group's
key, so the replica owning the partition owns the group. One record per partition per
ingest batch, alerts in merge order, split only where a record would outgrow
``MAX_RECORD_BYTES``: per-record costs (ids, headers, a broker ack each) are paid per
batch, not per alert.

Each routed alert carries its own trace (``RoutedAlert.traceparent``), which its group's
notification continues; the record's header continues the newest of them (the last),
the other traces as span links.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.engine import Engine
from opsmesh.events.alerts import AlertsRouted, AlertState, RoutedAlert
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import ALERT_GROUPS, KeyPartitions
from opsmesh.tracing.context import fan_in, parse_traceparent

# Under Kafka's default message.max.bytes (1 MiB) and the consumers' record limit.
MAX_RECORD_BYTES = 900_000
_encoder = msgspec.json.Encoder()


# An accepted alert as merged into the active alerts, and the state transition it made (previous,
# state) if any. A plain tuple: one is built per alert on the POST path.
Ingested = tuple[StoredAlert, AlertState | None, AlertState | None]


class RouteOut:
    def __init__(self, origin: str, partitions: int = ALERT_GROUPS.partitions) -> None:
        self._origin = origin
        # The partition of a group key, remembered (also asked on every routed record).
        self.partition = KeyPartitions(partitions)

    def records(self, engine: Engine, items: Sequence[Ingested]) -> list[Outgoing]:
        by_partition: dict[int, list[RoutedAlert]] = {}
        for a, transition_from, transition_to in items:
            previous, state = transition_from, transition_to
            labels = a.labels if isinstance(a.labels, dict) else dict(a.labels)
            annotations = a.annotations if isinstance(a.annotations, dict) else dict(a.annotations)
            for route, key in engine.routes_for(a):
                routed = RoutedAlert(
                    route_id=route.id,
                    group_key=key,
                    fingerprint=a.fingerprint,
                    labels=labels,
                    annotations=annotations,
                    starts_at=a.starts_at,
                    ends_at=a.ends_at,
                    updated_at=a.updated_at,
                    generator_url=a.generator_url,
                    timeout=a.timeout,
                    source=a.source.value,
                    previous=previous,
                    state=state,
                    traceparent=a.trace,
                )
                previous = state = None  # history is written with the first route only
                partition = self.partition(key)
                found = by_partition.get(partition)
                if found is None:
                    by_partition[partition] = [routed]
                else:
                    found.append(routed)
        out: list[Outgoing] = []
        for partition, alerts in by_partition.items():
            self._chunk(partition, alerts, out)
        return out

    def _chunk(self, partition: int, alerts: list[RoutedAlert], out: list[Outgoing]) -> None:
        event = AlertsRouted(alerts=alerts, origin=self._origin)
        encoded = _encoder.encode(event)
        if len(encoded) > MAX_RECORD_BYTES and len(alerts) > 1:
            half = len(alerts) // 2
            self._chunk(partition, alerts[:half], out)
            self._chunk(partition, alerts[half:], out)
            return
        trace = fan_in(parse_traceparent(a.traceparent) if a.traceparent else None for a in alerts)
        out.append(
            Outgoing(
                ALERT_GROUPS,
                alerts[0].group_key,
                event,
                partition=partition,
                encoded=encoded,
                trace=trace.parent,
                links=trace.links,
            )
        )
