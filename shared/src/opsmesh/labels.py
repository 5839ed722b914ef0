"""Label sets and their fingerprints, computed exactly as Prometheus does.

Alertmanager identifies an alert by the FNV-1a 64 hash of its sorted label pairs
(``model.LabelSet.Fingerprint``), so the same labels get the same id in both systems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

# Public for alert-engine's vectorised batch of the same hash (alert_engine.label_batches).
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF
SEPARATOR_BYTE = bytes((_SEPARATOR,))


def _fnv1a_add(h: int, data: bytes) -> int:
    prime, mask = FNV_PRIME, _MASK
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
        return f"{FNV_OFFSET:016x}"
    parts = []
    for name, value in items:
        parts.append(name.encode())
        parts.append(value.encode())
    parts.append(b"")
    return f"{_fnv1a_add(FNV_OFFSET, SEPARATOR_BYTE.join(parts)):016x}"


# Below this many label sets the per-byte loop (and its cache) beats setting up arrays.
def series_id(name: str, labels: Mapping[str, str]) -> str:
    """A stable, human-readable series id: ``name{a="1",b="2"}`` with sorted labels."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def common_pairs(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map has (Alertmanager's ``commonLabels``/``commonAnnotations``
    of the alerts a notification carries); empty for no maps."""
    if not maps:
        return {}
    first = maps[0]
    common = dict(first)
    for other in maps[1:]:
        if other is first:
            continue
        for key in [k for k, v in common.items() if other.get(k) != v]:
            del common[key]
        if not common:
            break
    return common
