"""The guard over aiokafka's record batches, with fake batches: compressed ones are decoded
under a ``try`` and count against the fetch's inflation budget; others pass untouched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import aiokafka.record.default_records as records
import pytest
from aiokafka.errors import UnsupportedCodecError

from opsmesh.kafka.batches import (
    HEADER_UNDECODABLE,
    MAX_DECOMPRESSED_FETCH_BYTES,
    REFUSED_CODECS,
    _GuardedRecords,
    install,
    undecodable,
)


@dataclass
class Record:
    offset: int
    value: bytes
    key: bytes | None = None


@dataclass
class Batch:
    base_offset: int
    records: list[Record]
    compression_type: int = 1  # gzip
    fails: bool = False
    is_control_batch: bool = False
    max_timestamp: int = 0
    timestamp_type: int = 0
    validated: bool = field(default=False)

    @property
    def next_offset(self) -> int:
        return self.base_offset + len(self.records)

    def validate_crc(self) -> bool:
        self.validated = True
        return True

    def __iter__(self) -> Iterator[Record]:
        if self.fails:
            raise OSError("Not a gzipped file")
        return iter(self.records)


class Records:
    def __init__(self, batches: list[Batch]) -> None:
        self._batches = batches

    def has_next(self) -> bool:
        return bool(self._batches)

    def next_batch(self) -> Batch:
        return self._batches.pop(0)


def _drain(guarded: _GuardedRecords) -> list[list[Record]]:
    out = []
    while guarded.has_next():
        out.append(list(guarded.next_batch()))
    return out


def test_a_batch_that_fails_to_inflate_becomes_one_stand_in_at_its_last_offset() -> None:
    bad = Batch(10, [Record(10, b"a"), Record(11, b"b"), Record(12, b"c")], fails=True)
    good = Batch(13, [Record(13, b"d")])
    (stand_in,), (after,) = _drain(_GuardedRecords(Records([bad, good])))
    assert stand_in.offset == 12
    assert stand_in.value is None
    assert dict(stand_in.headers)[HEADER_UNDECODABLE] == b"OSError: Not a gzipped file"
    assert undecodable(stand_in.headers) == "batch from offset 10: OSError: Not a gzipped file"
    assert after.offset == 13


def test_one_fetch_stops_taking_compressed_batches_past_its_budget() -> None:
    big = MAX_DECOMPRESSED_FETCH_BYTES // 2 + 1
    batches = [Batch(i, [Record(i, b"x" * big)]) for i in range(3)]
    records = Records(batches)
    taken = _drain(_GuardedRecords(records))
    assert [r.offset for (r,) in taken] == [0, 1], "the third waits for the next fetch"
    assert records.has_next()


def test_an_uncompressed_batch_passes_untouched() -> None:
    plain = Batch(0, [Record(0, b"x" * MAX_DECOMPRESSED_FETCH_BYTES)], compression_type=0)
    guarded = _GuardedRecords(Records([plain, Batch(1, [Record(1, b"y")])]))
    assert guarded.next_batch() is plain
    assert not plain.validated, "aiokafka checks its CRC itself"
    assert guarded.has_next(), "uncompressed bytes do not count against the budget"


def test_snappy_lz4_and_zstd_are_refused_even_with_cramjam_installed() -> None:
    install()
    for codec in REFUSED_CODECS:
        with pytest.raises(UnsupportedCodecError, match=f"{codec} batches are not accepted"):
            getattr(records, f"{codec}_decode")(b"anything")
