"""OffsetTracker: what the batch consumer may commit, example by example and as
properties over random runs (gaps, holds, failed commits, stops, rebalances)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opsmesh.kafka.handler import Partition
from opsmesh.kafka.offsets import CommitPlan, OffsetTracker

A: Partition = ("opsmesh.metrics", 0)
B: Partition = ("opsmesh.metrics", 1)


def returned(
    tracker: OffsetTracker,
    positions: dict[Partition, int],
    hold_from: dict[Partition, int] | None = None,
    metadata: dict[Partition, str] | None = None,
) -> None:
    tracker.handing(positions)
    tracker.handled(positions, hold_from or {}, metadata or {})


def test_nothing_handled_commits_nothing() -> None:
    tracker = OffsetTracker()
    assert not tracker.plan({A, B})
    assert tracker.safe(A) is None


def test_a_returned_call_commits_past_its_last_record() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10, B: 3})
    assert tracker.plan({A, B}) == CommitPlan({A: 10, B: 3})


def test_a_call_handed_but_not_returned_moves_read_progress_only() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10})
    tracker.handing({A: 20})  # being retried, or stopped while failing
    assert tracker.handed_to(A) == 20
    assert tracker.consumed_to(A) == 10
    assert tracker.plan({A}).offsets == {A: 10}


def test_the_hold_caps_the_commit_and_is_replaced_by_each_call() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10, B: 10}, hold_from={A: 4, B: 7})
    assert tracker.plan({A, B}).offsets == {A: 4, B: 7}
    # The next call holds A only: B's hold is released although B had no records.
    returned(tracker, {A: 12}, hold_from={A: 4})
    assert tracker.plan({A, B}).offsets == {A: 4, B: 10}
    # A hold above what was consumed does not commit records not handled yet.
    returned(tracker, {}, hold_from={A: 50})
    assert tracker.plan({A, B}).offsets == {A: 12, B: 10}


def test_a_commit_is_sent_once_and_never_goes_backwards() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10})
    plan = tracker.plan({A})
    tracker.committed(plan)
    assert tracker.committed_at(A) == 10
    assert not tracker.plan({A})
    # The handler now holds an earlier offset (a window reopened by a late record): the
    # commit stays where it is until the hold moves past it.
    returned(tracker, {A: 15}, hold_from={A: 8})
    assert not tracker.plan({A})
    returned(tracker, {A: 15}, hold_from={A: 13})
    assert tracker.plan({A}).offsets == {A: 13}


def test_a_failed_commit_is_planned_again() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10})
    assert tracker.plan({A}).offsets == {A: 10}
    assert tracker.plan({A}).offsets == {A: 10}  # not told committed: still due


def test_gaps_in_offsets_are_passed_over() -> None:
    # Compacted away, transaction markers, a dead-lettered poison record: the position
    # after the last record handled covers them.
    tracker = OffsetTracker()
    tracker.handing({A: 101})  # records 3, 7, 100 of a compacted partition
    tracker.handled({A: 101}, {}, {})
    assert tracker.plan({A}).offsets == {A: 101}


def test_only_assigned_partitions_are_committed() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10, B: 5})
    assert tracker.plan({A}).offsets == {A: 10}
    assert not tracker.plan(set())


def test_metadata_is_the_latest_per_partition_and_named_for_every_partition() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10, B: 5}, metadata={A: "w=1"})
    plan = tracker.plan({A, B})
    assert plan.metadata == {A: "w=1"}
    assert plan.with_metadata() == {A: (10, "w=1"), B: (5, "")}
    tracker.committed(plan)
    # A batch without A's records leaves A's metadata as it was.
    returned(tracker, {A: 12, B: 6}, metadata={B: "w=2"})
    assert tracker.plan({A, B}).with_metadata() == {A: (12, "w=1"), B: (6, "w=2")}


def test_revocation_forgets_the_partition() -> None:
    tracker = OffsetTracker()
    returned(tracker, {A: 10, B: 10}, hold_from={A: 5}, metadata={A: "m"})
    tracker.committed(tracker.plan({A, B}))
    tracker.revoke({A})
    assert tracker.handed_to(A) is None
    assert tracker.consumed_to(A) is None
    assert tracker.committed_at(A) is None
    assert tracker.committed_at(B) == 10
    assert not tracker.plan({A, B})
    # Assigned again, from the broker's commit at 5: the earlier hold and metadata are
    # gone, and a commit below the one this process made before is allowed.
    returned(tracker, {A: 7}, hold_from={B: 10})
    assert tracker.plan({A, B}) == CommitPlan({A: 7})


def test_a_hold_left_from_an_earlier_ownership_never_moves_the_commit_back() -> None:
    tracker = OffsetTracker()
    tracker.handing({A: 5}, {A: 0})
    tracker.handled({A: 5}, {}, {})
    tracker.committed(tracker.plan({A}))
    tracker.revoke({A})
    # Assigned again: the fetch resumes at the broker's commit (5); a handler that kept
    # its state through the revocation still holds from 2.
    tracker.handing({A: 7}, {A: 5})
    tracker.handled({A: 7}, {A: 2}, {})
    assert not tracker.plan({A})
    # Once its hold is past the ownership's first record, the commit moves on.
    tracker.handing({A: 9}, {A: 7})
    tracker.handled({A: 9}, {A: 6}, {})
    assert tracker.plan({A}) == CommitPlan({A: 6})


def test_lag_is_the_highwater_past_the_last_record_handled() -> None:
    tracker = OffsetTracker()
    assert tracker.lag(A, 10) is None
    returned(tracker, {A: 4})
    assert tracker.lag(A, None) is None
    assert tracker.lag(A, 10) == 6
    assert tracker.lag(A, 3) == 0


# --- properties over random runs ------------------------------------------------------


@dataclass
class Model:
    """What really happened to each record: handed to a call that returned, and not
    within the handler's hold."""

    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    next_offset: dict[Partition, int] = field(default_factory=lambda: {A: 0, B: 0})
    handed: dict[Partition, set[int]] = field(default_factory=lambda: {A: set(), B: set()})
    handled: dict[Partition, set[int]] = field(default_factory=lambda: {A: set(), B: set()})
    hold: dict[Partition, int] = field(default_factory=dict)
    assigned: set[Partition] = field(default_factory=lambda: {A, B})
    broker: dict[Partition, int] = field(default_factory=dict)  # the group's commits
    stopped: bool = False

    def done(self, partition: Partition, offset: int) -> bool:
        return offset in self.handled[partition] and offset < self.hold.get(partition, 1 << 62)


partitions = st.sampled_from([A, B])
step = st.one_of(
    # a poll: per partition a run of records with gaps (compaction, markers); the call
    # returns with a hold, or is stopped while failing (the loop ends)
    st.tuples(
        st.just("poll"),
        st.dictionaries(partitions, st.lists(st.integers(1, 4), min_size=1, max_size=5)),
        st.dictionaries(partitions, st.integers(0, 40)),
        st.booleans(),
    ),
    st.tuples(st.just("commit"), st.booleans()),
    st.tuples(st.just("revoke"), partitions),
    st.tuples(st.just("assign"), partitions),
)


def _poll(
    model: Model, gaps: dict[Partition, list[int]], hold: dict[Partition, int], returns: bool
) -> None:
    if model.stopped:
        gaps = {}  # after a stop, only the last empty call and the final commit
    records: dict[Partition, list[int]] = {}
    for partition, steps in gaps.items():
        if partition not in model.assigned:
            continue
        offsets = []
        for gap in steps:
            model.next_offset[partition] += gap
            offsets.append(model.next_offset[partition] - 1)
        records[partition] = offsets
        model.handed[partition].update(offsets)
    positions = {p: offsets[-1] + 1 for p, offsets in records.items()}
    model.tracker.handing(positions, {p: offsets[0] for p, offsets in records.items()})
    if returns or model.stopped:
        model.tracker.handled(positions, hold, {})
        for partition, offsets in records.items():
            model.handled[partition].update(offsets)
        model.hold = dict(hold)
    else:
        model.stopped = True


def _commit(model: Model, accepted: bool) -> None:
    tracker = model.tracker
    plan = tracker.plan(model.assigned)
    for partition, offset in plan.offsets.items():
        assert partition in model.assigned
        # never past an unfinished record of this ownership
        for record in model.handed[partition]:
            assert record >= offset or model.done(partition, record), (partition, record)
        assert offset <= (tracker.consumed_to(partition) or 0)
        assert offset <= model.hold.get(partition, offset)
        # never backwards
        assert offset > model.broker.get(partition, -1)
    if accepted:
        tracker.committed(plan)
        model.broker.update(plan.offsets)


def _revoke(model: Model, partition: Partition) -> None:
    model.assigned.discard(partition)
    model.hold.pop(partition, None)  # the handler drops its state on revocation
    model.tracker.revoke({partition})
    assert model.tracker.plan({partition}) == CommitPlan()


def _assign(model: Model, partition: Partition) -> None:
    if partition in model.assigned:
        return
    # The new ownership resumes from the broker's commit: records past it were never
    # committed, so they are read (and handled) again.
    model.assigned.add(partition)
    resume = model.broker.get(partition, 0)
    model.next_offset[partition] = resume
    model.handed[partition] = {o for o in model.handed[partition] if o < resume}
    model.handled[partition] = {o for o in model.handled[partition] if o < resume}


def _apply(model: Model, action: tuple[Any, ...]) -> None:
    kind = action[0]
    if kind == "poll":
        _poll(model, action[1], action[2], action[3])
    elif kind == "commit":
        _commit(model, action[1])
    elif kind == "revoke":
        _revoke(model, action[1])
    else:
        _assign(model, action[1])


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=40))
def test_commits_never_pass_an_unfinished_record_nor_go_backwards(
    steps: list[tuple[Any, ...]],
) -> None:
    model = Model()
    for action in steps:
        _apply(model, action)
    # The final commit (on stop) holds to the same rules.
    _apply(model, ("commit", True))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=6), max_size=20))
def test_without_a_hold_each_poll_commits_exactly_past_its_last_record(
    polls: list[list[int]],
) -> None:
    tracker = OffsetTracker()
    offset = 0
    for gaps in polls:
        offset += sum(gaps)
        returned(tracker, {A: offset})
        plan = tracker.plan({A})
        assert plan.offsets == {A: offset}
        tracker.committed(plan)
        assert not tracker.plan({A})
