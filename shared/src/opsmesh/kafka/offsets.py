"""Which offset of each partition the batch consumer may commit: a pure tracker.

The consumer (``opsmesh.kafka.consumer``) tells the tracker what it does with a poll and
the tracker answers what is safe to commit; no I/O, no aiokafka, so every rule below is
unit-tested on its own (``shared/tests/unit/test_kafka_offsets.py``).

- **handed**: past the last record handed to the handler, set *before* the call (so it
  covers a batch being retried); read progress for ``ReadProgress.lagging``.
- **consumed**: past the last record of a call that returned, so its effects are durable
  (dead letters included: the consumer flushes them before it commits). A call that was
  stopped while failing leaves it where it was: nothing of that batch is committed.
- **hold**: the handler's whole hold (``BatchResult.hold_from``) as of its latest call,
  replacing the previous one: per partition, the lowest offset whose effects are still
  only in memory.
- **safe** = ``min(consumed, hold)``: every record below it is done. Kafka commits the
  position of the next record to read, so gaps in the offsets (compaction, transaction
  markers, a poison record set aside by bisection and dead-lettered) need no special
  case: the position after the last record handled passes over them.
- A partition is committed only while assigned, only when ``safe`` moved past its last
  commit (a commit never goes backwards, and an unchanged one is not sent again), with
  the latest metadata the handler reported for it, if any.
- **Revocation** forgets everything about the partitions: the next owner (perhaps this
  process again) starts from the broker's committed offset.
- **Floor**: the first record handed in an ownership is at or past the broker's commit
  (the fetch resumed there), so nothing at or below it is ever committed by that
  ownership: a hold left over from an earlier ownership of the partition (a handler that
  kept its state through a revocation) cannot move the group's commit backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field

from opsmesh.kafka.handler import Partition

__all__ = ["CommitPlan", "OffsetTracker"]


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """Offsets to commit, and the metadata to commit with those partitions that have any."""

    offsets: dict[Partition, int] = field(default_factory=dict)
    metadata: dict[Partition, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.offsets)

    def with_metadata(self) -> dict[Partition, tuple[int, str]]:
        """Every partition with its offset and metadata (``""`` where none): the form of a
        commit that carries metadata, which must name it for every partition."""
        return {p: (o, self.metadata.get(p, "")) for p, o in self.offsets.items()}


class OffsetTracker:
    def __init__(self) -> None:
        self._handed: dict[Partition, int] = {}
        self._consumed: dict[Partition, int] = {}
        self._hold: dict[Partition, int] = {}
        self._metadata: dict[Partition, str] = {}
        self._committed: dict[Partition, int] = {}
        self._floor: dict[Partition, int] = {}

    def handing(
        self, positions: Mapping[Partition, int], firsts: Mapping[Partition, int] | None = None
    ) -> None:
        """A call is about to get records up to (not including) ``positions``; ``firsts``
        is the offset of each partition's first record in the call (the floor of an
        ownership that hands its first records now)."""
        for partition, first in (firsts or {}).items():
            if partition not in self._handed:
                self._floor[partition] = first
        self._handed.update(positions)

    def handled(
        self,
        positions: Mapping[Partition, int],
        hold_from: Mapping[Partition, int],
        metadata: Mapping[Partition, str],
    ) -> None:
        """The call returned: records below ``positions`` are handled, the handler holds
        ``hold_from`` (its whole hold) and reported ``metadata`` (the latest per partition
        stands until it is reported again)."""
        self._consumed.update(positions)
        self._hold = dict(hold_from)
        self._metadata.update(metadata)

    def handed_to(self, partition: Partition) -> int | None:
        return self._handed.get(partition)

    def consumed_to(self, partition: Partition) -> int | None:
        return self._consumed.get(partition)

    def committed_at(self, partition: Partition) -> int | None:
        return self._committed.get(partition)

    def safe(self, partition: Partition) -> int | None:
        """Every record of ``partition`` below this offset is done (None: none handled)."""
        consumed = self._consumed.get(partition)
        if consumed is None:
            return None
        return min(consumed, self._hold.get(partition, consumed))

    def plan(self, assigned: Set[Partition]) -> CommitPlan:
        """What to commit now for the ``assigned`` partitions (empty: nothing moved)."""
        offsets: dict[Partition, int] = {}
        metadata: dict[Partition, str] = {}
        for partition, consumed in self._consumed.items():
            if partition not in assigned:
                continue
            safe = min(consumed, self._hold.get(partition, consumed))
            if safe > max(self._committed.get(partition, -1), self._floor.get(partition, -1)):
                offsets[partition] = safe
                if partition in self._metadata:
                    metadata[partition] = self._metadata[partition]
        return CommitPlan(offsets, metadata)

    def committed(self, plan: CommitPlan) -> None:
        """The broker accepted ``plan``."""
        self._committed.update(plan.offsets)

    def lag(self, partition: Partition, highwater: int | None) -> int | None:
        """Records on the broker past the last one handled (None when either is unknown)."""
        consumed = self._consumed.get(partition)
        if highwater is None or consumed is None:
            return None
        return max(0, highwater - consumed)

    def revoke(self, partitions: Iterable[Partition]) -> None:
        """The partitions went to another owner: forget them."""
        for partition in partitions:
            self._consumed.pop(partition, None)
            self._handed.pop(partition, None)
            self._committed.pop(partition, None)
            self._hold.pop(partition, None)
            self._metadata.pop(partition, None)
            self._floor.pop(partition, None)
