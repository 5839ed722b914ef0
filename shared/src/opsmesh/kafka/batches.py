"""Compressed record batches the consumer cannot or must not decompress become one dead
letter each, instead of stopping the consumer for good.

aiokafka decompresses a whole batch (gzip, snappy, lz4, zstd) while ``getmany`` iterates
it, before the kit sees any record, and an error there is raised out of ``getmany`` at the
same offset on every poll and after every restart. Two such batches need no bug to
arrive, only a producer with write access to a topic:

- a batch in a codec the consumer does not take: snappy, lz4 and zstd are refused whether
  or not ``cramjam`` (their library, which the workspace installs for Prometheus remote
  write) is present, because their decoders take no bound on the output and zstd inflates
  far more than gzip; the mesh's producers do not compress, and a producer of other
  languages is told to use gzip or none (``docs/producing.md``): ``UnsupportedCodecError``;
- a compression bomb: the broker bounds a batch by its compressed size
  (``message.max.bytes``, 1 MiB), and gzip inflates ~1000:1, so one batch is ~1 GB in
  memory. gzip batches are inflated here up to ``MAX_DECOMPRESSED_BATCH_BYTES`` (16 MiB);
  past it the batch is refused. And one fetch of a partition takes compressed batches
  only until ``MAX_DECOMPRESSED_FETCH_BYTES`` (16 MiB) were inflated; the next poll
  fetches the rest.

``install()`` wraps aiokafka's per-partition record iterator (``PartitionRecords``): a
compressed batch is decoded eagerly inside a ``try``; one that fails is replaced by a
stand-in record at the batch's last offset, with no value and an
``opsmesh_undecodable_batch`` header saying why. The consumer dead-letters it
(``undecodable_batch``, with the batch's offsets) and commits past the batch. Uncompressed
batches, the mesh's own, pass untouched. A batch failing its CRC is left to aiokafka,
which raises and refetches it, as before.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import UnsupportedCodecError

from opsmesh.kafka.aiokafka_internals import (
    PartitionRecords,
    replace_decoder,
    replace_gzip_decode,
    replace_partition_records,
)

# Far above any batch a producer builds (batch.size 16 KiB to 1 MiB of compressed data, of
# records under the 1 MiB request limit), far below what fills a process.
MAX_DECOMPRESSED_BATCH_BYTES = 16 * 1024 * 1024
# One fetch of a partition stops taking compressed batches once this much was inflated;
# the rest is fetched again by the next poll. Without it a 1 MiB fetch of 64 KiB bombs
# would be sixteen batches, each up to the batch bound, in one ``getmany``.
MAX_DECOMPRESSED_FETCH_BYTES = 16 * 1024 * 1024
HEADER_UNDECODABLE = "opsmesh_undecodable_batch"
HEADER_FIRST_OFFSET = "opsmesh_batch_first_offset"


# Decoded by aiokafka through cramjam without a bound on the output: refused (see above).
REFUSED_CODECS = ("snappy", "lz4", "zstd")


def _refuse(codec: str) -> Callable[[Any], bytes]:
    def refuse(payload: Any) -> bytes:
        raise UnsupportedCodecError(
            f"{codec} batches are not accepted (no bound on their decompressed size); "
            "produce uncompressed or gzip"
        )

    return refuse


class BatchTooLarge(ValueError):
    """A compressed batch inflates past ``MAX_DECOMPRESSED_BATCH_BYTES``."""


def bounded_gzip_decode(payload: Any) -> bytes:
    """aiokafka's ``gzip_decode`` (every member of the stream) with a bound on the output."""
    out: list[bytes] = []
    size = 0
    data = bytes(payload)
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        chunk = inflater.decompress(data, MAX_DECOMPRESSED_BATCH_BYTES - size + 1)
        size += len(chunk)
        if size > MAX_DECOMPRESSED_BATCH_BYTES or inflater.unconsumed_tail:
            raise BatchTooLarge(
                f"a compressed batch of {len(payload)} bytes inflates past "
                f"{MAX_DECOMPRESSED_BATCH_BYTES} bytes"
            )
        if not inflater.eof:
            raise zlib.error("truncated gzip stream")
        out.append(chunk)
        data = inflater.unused_data
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class _StandIn:
    """What aiokafka's ``_consumer_record`` reads from a record."""

    offset: int
    timestamp: int
    timestamp_type: int
    headers: tuple[tuple[str, bytes], ...]
    key: bytes | None = None
    value: bytes | None = None
    checksum: int | None = None


class _Batch:
    """A compressed batch already decoded (``records``), or one that could not be
    (``records`` is the stand-in); every other attribute is the batch's own."""

    def __init__(self, batch: Any, records: list[Any]) -> None:
        self._batch = batch
        self._records = records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def validate_crc(self) -> bool:
        # Checked before decoding (``_GuardedRecords``); the batch refuses a check after
        # its iteration.
        return True

    def __iter__(self) -> Iterator[Any]:
        return iter(self._records)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class _GuardedRecords:
    """aiokafka's ``MemoryRecords`` whose compressed batches are decoded under a ``try``."""

    def __init__(self, records: Any) -> None:
        self._records = records
        self._inflated = 0  # bytes of records decoded from compressed batches

    def has_next(self) -> bool:
        # Past the fetch budget, the partition's remaining batches wait for the next poll
        # (aiokafka fetches again from the offset after the last batch taken).
        return self._inflated < MAX_DECOMPRESSED_FETCH_BYTES and bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if (
            batch is None
            or not getattr(batch, "compression_type", 0)
            or batch.is_control_batch
            or not batch.validate_crc()
        ):
            return batch
        try:
            records = list(batch)
        except Exception as exc:  # any failure to inflate or parse: deterministic
            last = batch.next_offset - 1
            stand_in = _StandIn(
                offset=last,
                timestamp=batch.max_timestamp,
                timestamp_type=batch.timestamp_type,
                headers=(
                    (HEADER_UNDECODABLE, _describe(exc).encode()),
                    (HEADER_FIRST_OFFSET, str(batch.base_offset).encode()),
                ),
            )
            return _Batch(batch, [stand_in])
        self._inflated += sum(len(r.value or b"") + len(r.key or b"") for r in records)
        return _Batch(batch, records)


class GuardedPartitionRecords(PartitionRecords):  # type: ignore[misc]
    def __init__(self, tp: Any, records: Any, *args: Any) -> None:
        super().__init__(tp, _GuardedRecords(records), *args)


_installed = False


def install() -> None:
    """Guard every aiokafka consumer of this process (idempotent)."""
    global _installed  # noqa: PLW0603 - one process-wide patch of a third-party module
    if _installed:
        return
    replace_partition_records(GuardedPartitionRecords)
    replace_gzip_decode(bounded_gzip_decode)
    for codec in REFUSED_CODECS:
        replace_decoder(codec, _refuse(codec))
    _installed = True


def undecodable(headers: Any) -> str | None:
    """Why a consumed record is the stand-in of an undecodable batch, or None."""
    for name, value in headers or ():
        if name == HEADER_UNDECODABLE:
            first = next((v for n, v in headers if n == HEADER_FIRST_OFFSET), b"?")
            return f"batch from offset {first.decode()}: {bytes(value).decode(errors='replace')}"
    return None
