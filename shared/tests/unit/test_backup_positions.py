"""A consumer group's position carried over to restored records whose offsets moved
(a topic that kept records, or gaps in the original offsets)."""

from __future__ import annotations

from opsmesh.cli.backup_kafka import _moved

# Old offsets 3, 4, 7 (a gap: 5 and 6 were compacted away) restored after 100 records.
MOVES = [(3, 100), (4, 101), (7, 102)]


def test_a_group_resumes_at_the_restored_copy_of_its_next_record() -> None:
    assert _moved(4, MOVES, end=103) == 101
    assert _moved(0, MOVES, end=103) == 100  # before the backup's first record: all of it


def test_a_position_in_a_gap_resumes_at_the_next_record_there_is() -> None:
    assert _moved(5, MOVES, end=103) == 102


def test_a_group_that_had_read_everything_resumes_at_the_end() -> None:
    assert _moved(8, MOVES, end=103) == 103
    assert _moved(0, [], end=100) == 100
