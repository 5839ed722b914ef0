"""Group ownership: which replica flushes which groups.

Kafka's assignment of ``opsmesh.alert-groups`` partitions decides it. Groups hold durable
state only: the in-memory active alerts also hold merges on their way to their owner, so
groups are built from rows read back from PostgreSQL (``take_over``, ``apply_routed``),
never from the in-memory copy; a flush decided again after a crash or a hand-over thus
decides from the same durable state, with the same idempotency key (issue 18).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alert_engine.core.alerts import AlertSource, StoredAlert
from alert_engine.core.amconfig import EngineConfig
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import ReconfigureOutcome, grouped
from alert_engine.pipeline.route_out import RouteOut
from alert_engine.pipeline.state.held import Held, LogKey
from alert_engine.pipeline.state.stores import Stores
from opsmesh.events.alerts import AlertsRouted, RoutedAlert

# The stored rows of some alerts, by fingerprint, as read after a write.
Durable = Mapping[str, StoredAlert]


@dataclass(frozen=True, slots=True)
class TakeOver:
    """What a take-over reads before it changes anything."""

    alerts: list[StoredAlert]
    entries: dict[LogKey, LogEntry]


def _stored(r: RoutedAlert) -> StoredAlert:
    return StoredAlert(
        r.fingerprint,
        r.labels,
        r.annotations,
        r.starts_at,
        r.ends_at,
        r.updated_at,
        r.generator_url,
        r.timeout,
        AlertSource(r.source),
        r.traceparent,
    )


def newest_reports(batches: Sequence[AlertsRouted]) -> dict[str, StoredAlert]:
    """Each alert's newest report in the batches, as the persist statement chooses the
    one it writes: greatest ``updated_at``, then the later record, then the later place
    in it (a ``continue`` route's copy is the same report)."""
    newest: dict[str, RoutedAlert] = {}
    for batch in batches:
        for r in batch.alerts:
            held = newest.get(r.fingerprint)
            if held is None or r.updated_at >= held.updated_at:
                newest[r.fingerprint] = r
    return {fp: _stored(r) for fp, r in newest.items()}


class Ownership:
    def __init__(self, held: Held, *, stores: Stores, route_out: RouteOut, origin: str) -> None:
        self._held = held
        self._stores = stores
        self._route_out = route_out
        self._origin = origin

    def owns(self, group_key: str) -> bool:
        return self._route_out.partition(group_key) in self._held.owned

    # -- without the engine lock ---------------------------------------------------

    async def persist(self, records: Sequence[bytes], batches: Sequence[AlertsRouted]) -> Durable:
        """Make routed alerts durable (alert rows and history) before they are applied:
        the consumer commits only after, so a crash replays them. Returns the rows of
        the batches' alerts as committed, which ``apply_routed`` applies: the batch's
        newest report of each alert, as the statement wrote it, or, where the row was
        newer already (a replay), the row read back."""
        stale = await self._stores.active.persist_routed(records, self._origin)
        durable = newest_reports(batches)
        if stale:
            durable.update(
                {
                    a.fingerprint: a
                    for a in await self._stores.active.load(fingerprints=sorted(stale))
                }
            )
        return durable

    async def read_take_over(self) -> TakeOver:
        # Only a flush writes entries, and a take-over holds ``flushing``.
        return TakeOver(await self._stores.active.load(), await self._stores.log.load())

    # -- under the engine lock -----------------------------------------------------

    def apply_routed(self, batches: Sequence[AlertsRouted], durable: Durable, now: float) -> None:
        """Persisted records applied to this replica's groups. A group holds only durable
        versions: each record applies its alert's row as read back after ``persist``
        (``durable``), never the record itself if the row is newer (a replay after a
        crash or a rebalance: a replayed firing record must not bring back an alert whose
        resolve was already notified), and never the in-memory version, which may be a
        merge that is not durable yet (see ``Engine.rebuild_owned``)."""
        engine = self._held.engine
        for batch in batches:
            for r in batch.alerts:
                if not self.owns(r.group_key):
                    continue  # a stale record from before a rebalance
                row = durable.get(r.fingerprint)
                version = row if row is not None and row.updated_at >= r.updated_at else _stored(r)
                engine.alerts.restore([version], now)  # keeps a newer merge held here
                engine.apply_routed(r.route_id, grouped(version), now, r.group_key)

    def take_over(self, partitions: set[int], read: TakeOver, now: float) -> int:
        """The new partitions' groups rebuilt from the rows just read (the records still
        on their way are consumed, persisted and applied before any flush sends them);
        returns how many groups this replica now holds."""
        held = self._held
        held.replace_active(read.alerts, now)
        held.entries = read.entries
        new = partitions - held.owned
        held.owned |= partitions
        held.engine.rebuild_owned(
            read.alerts, now, lambda key: self._route_out.partition(key) in new
        )
        return len(held.engine.dispatcher.groups())

    def revoke(self, partitions: set[int]) -> int:
        """Partitions handed to another replica: their groups dropped; returns how many."""
        self._held.owned -= partitions
        return self._held.engine.drop_unowned(self.owns)

    def reconfigure(
        self, config: EngineConfig, alerts: Sequence[StoredAlert], now: float
    ) -> ReconfigureOutcome:
        """A reloaded configuration; groups are rebuilt from the rows read (``alerts``)."""
        return self._held.engine.reconfigure(config, alerts, now, self.owns)
