"""A cached value with its deadlines, and its bytes as L2 stores them.

L2's format is a fixed header (two float64 deadlines, seconds since the epoch) followed by
the codec's bytes. The default codec is JSON, not pickle: a value read from a shared Redis
is never code that runs in the application.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Protocol

_HEADER = struct.Struct("<dd")


class Codec(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonCodec:
    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


@dataclass(slots=True)
class Entry:
    value: Any
    fresh_until: float
    stale_until: float
    size: int

    def fresh(self, now: float) -> bool:
        return now < self.fresh_until

    def usable_stale(self, now: float) -> bool:
        return now < self.stale_until


class CorruptEntry(ValueError):
    """L2 held bytes that are not an entry (another writer, or a codec change)."""


def encode(entry_value: bytes, fresh_until: float, stale_until: float) -> bytes:
    return _HEADER.pack(fresh_until, stale_until) + entry_value


def decode(data: bytes, codec: Codec) -> Entry:
    if len(data) < _HEADER.size:
        raise CorruptEntry("shorter than the header")
    fresh_until, stale_until = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    try:
        value = codec.loads(payload)
    except ValueError as exc:
        raise CorruptEntry(str(exc)) from exc
    return Entry(value, fresh_until, stale_until, len(payload))
