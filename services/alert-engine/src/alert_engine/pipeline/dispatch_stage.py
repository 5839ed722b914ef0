"""The alert-groups consumer: this replica's share of the aggregation groups.

Kafka's group assignment of ``opsmesh.alert-groups`` partitions decides which replica
owns which groups; assignment and revocation hand groups over, rebuilt from PostgreSQL.
Each batch is made durable in the stored alerts (one statement) before it is applied to
the groups (``EngineState.routed``), and the kit commits its offsets only after
``handle`` returns: a crash at any point replays the batch, and the write is idempotent.
A record that could never be written (``screening``: NUL, a time past year 9999) is
dead-lettered, not retried.
"""

from __future__ import annotations

from collections.abc import Sequence

from alert_engine.pipeline.screening import check_routed, screen
from alert_engine.pipeline.state import EngineState
from opsmesh.events.alerts import AlertsRouted
from opsmesh.kafka.consumer import BatchResult, Partition, Received
from opsmesh.topics import ALERT_GROUPS


class DispatchStage:
    def __init__(self, state: EngineState) -> None:
        self._state = state

    async def handle(self, batch: Sequence[Received[AlertsRouted]]) -> BatchResult:
        good, rejected = screen(batch, check_routed)
        if good:
            await self._state.routed(
                [r.message.value for r in good],
                [r.event for r in good],
                sent_at=[r.message.timestamp / 1000 for r in good],
            )
        return BatchResult(rejected=rejected)

    async def on_assigned(self, partitions: set[Partition]) -> None:
        await self._state.restored.wait()
        await self._state.assigned({p for topic, p in partitions if topic == ALERT_GROUPS.name})

    async def on_revoked(self, partitions: set[Partition]) -> None:
        await self._state.revoked({p for topic, p in partitions if topic == ALERT_GROUPS.name})
