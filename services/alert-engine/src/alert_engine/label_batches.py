"""Fingerprints of many label sets at once (an API POST of hundreds of alerts), in numpy.

alert-engine's own, so numpy is its dependency only: the label helpers in
``opsmesh.labels`` are imported by every service, and this is the same hash over arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from opsmesh.labels import FNV_OFFSET, FNV_PRIME, SEPARATOR_BYTE, fingerprint

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
    hashes = np.full(len(order), FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME)
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
    return SEPARATOR_BYTE.join([part.encode() for pair in pairs for part in pair]) + SEPARATOR_BYTE
