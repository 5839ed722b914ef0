"""Label sets and their fingerprints, computed exactly as Prometheus does.

Alertmanager identifies an alert by the FNV-1a 64 hash of its sorted label pairs
(``model.LabelSet.Fingerprint``), so the same labels get the same id in both systems.
"""

from __future__ import annotations

from collections.abc import Mapping

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF


def _fnv1a_add(h: int, data: bytes) -> int:
    for byte in data:
        h ^= byte
        h = (h * _FNV_PRIME) & _MASK
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """Hex fingerprint of a label set (16 hex digits, as Alertmanager prints it)."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        h = _fnv1a_add(h, name.encode())
        h = _fnv1a_add(h, bytes((_SEPARATOR,)))
        h = _fnv1a_add(h, labels[name].encode())
        h = _fnv1a_add(h, bytes((_SEPARATOR,)))
    return f"{h:016x}"


def series_id(name: str, labels: Mapping[str, str]) -> str:
    """A stable, human-readable series id: ``name{a="1",b="2"}`` with sorted labels."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
