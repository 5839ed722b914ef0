"""Label sets and their fingerprints, computed exactly as Prometheus does.

Alertmanager identifies an alert by the FNV-1a 64 hash of its sorted label pairs
(``model.LabelSet.Fingerprint``), so the same labels get the same id in both systems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF
_SEPARATOR_BYTE = bytes((_SEPARATOR,))


def _fnv1a_add(h: int, data: bytes) -> int:
    prime, mask = _FNV_PRIME, _MASK
    for byte in data:
        h = ((h ^ byte) * prime) & mask
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """Hex fingerprint of a label set (16 hex digits, as Alertmanager prints it)."""
    return _fingerprint(tuple(sorted(labels.items())))


# The hash is a per-byte loop in Python; rule evaluation fingerprints the same label sets
# over and over (every signal of a series), so recent ones are remembered.
@lru_cache(maxsize=32_768)
def _fingerprint(items: tuple[tuple[str, str], ...]) -> str:
    if not items:
        return f"{_FNV_OFFSET:016x}"
    parts = []
    for name, value in items:
        parts.append(name.encode())
        parts.append(value.encode())
    parts.append(b"")
    return f"{_fnv1a_add(_FNV_OFFSET, _SEPARATOR_BYTE.join(parts)):016x}"


# Below this many label sets the per-byte loop (and its cache) beats setting up arrays.
_VECTOR_MIN = 16


def fingerprints(label_sets: Sequence[Mapping[str, str]]) -> list[str]:
    """``[fingerprint(l) for l in label_sets]``, fast for a batch (an API POST of
    hundreds of alerts).

    FNV-1a is sequential within one input, but independent across inputs: the batch is
    hashed byte position by byte position over all inputs at once, in numpy's wrapping
    uint64 arithmetic. Inputs are ordered longest first, so the inputs still running at
    a position are a prefix of the column.
    """
    if len(label_sets) < _VECTOR_MIN:
        return [fingerprint(labels) for labels in label_sets]
    encoded = [_label_bytes(labels) for labels in label_sets]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    lengths = [len(encoded[i]) for i in order]
    longest = lengths[0]
    # columns[pos, j]: byte ``pos`` of the j-th longest input (zero past its end).
    rows = b"".join([encoded[i].ljust(longest, b"\0") for i in order])
    columns = np.frombuffer(rows, dtype=np.uint8).reshape(len(order), longest).T.copy()
    # running[pos]: how many inputs are longer than pos.
    running = np.searchsorted(-np.array(lengths), -np.arange(longest), side="left").tolist()
    hashes = np.full(len(order), _FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    xor, multiply = np.bitwise_xor, np.multiply
    for pos in range(longest):
        live = hashes[: running[pos]]
        xor(live, columns[pos, : running[pos]], out=live)
        multiply(live, prime, out=live)
    out = [""] * len(order)
    for rank, value in zip(order, hashes.tolist(), strict=True):
        out[rank] = f"{value:016x}"
    return out


def _label_bytes(labels: Mapping[str, str]) -> bytes:
    """The bytes Prometheus hashes: name 0xff value 0xff ... over the sorted pairs."""
    if not labels:
        return b""
    pairs = sorted(labels.items())
    return (
        _SEPARATOR_BYTE.join([part.encode() for pair in pairs for part in pair]) + _SEPARATOR_BYTE
    )


def series_id(name: str, labels: Mapping[str, str]) -> str:
    """A stable, human-readable series id: ``name{a="1",b="2"}`` with sorted labels."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
