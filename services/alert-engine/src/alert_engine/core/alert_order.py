"""The order Alertmanager lists a group's alerts in (``alert.AlertSlice.Less``): by the
``job`` label, then ``instance`` (an alert that has the label comes before one that has
not), then by label set as ``model.LabelSet.Before`` compares them — fewer labels first,
then the first differing pair over the sorted union of names. Notifications and the
groups API list alerts this way, so a receiver sees the order it saw from Alertmanager.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

_OVERRIDE_KEYS = ("job", "instance")


def label_set_before(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    if len(a) != len(b):
        return len(a) < len(b)
    for name in sorted({*a, *b}):
        if name not in a:
            return True
        if name not in b:
            return False
        if a[name] != b[name]:
            return a[name] < b[name]
    return False


def sort_key(labels: Mapping[str, str]) -> tuple[object, ...]:
    """A key that orders as ``AlertSlice.Less``, so a sort compares tuples instead of
    walking label sets pairwise. For two sets of one size, ``Before`` is decided at the
    first index where their sorted (name, value) pairs differ: equal names compare by
    value, while different names put first the set whose name is *larger* (the other one
    lacks it, and a set lacking the first differing name is before) — hence each name
    appears in the key inverted."""
    overrides = tuple((0, labels[k]) if k in labels else (1, "") for k in _OVERRIDE_KEYS)
    pairs = [(_inverted(name), value) for name, value in sorted(labels.items())]
    return (*overrides, len(labels), pairs)


_TOP = chr(0x10FFFF)


@functools.lru_cache(maxsize=4096)
def _inverted(name: str) -> str:
    """A string whose order is the reverse of ``name``'s among label names (non-empty,
    no NUL): each code point mirrored, and a terminator above them all so that a prefix
    sorts after its extensions."""
    return "".join(chr(0x10FFFF - ord(c)) for c in name) + _TOP


def alertmanager_order(alerts: Iterable[T], labels: Callable[[T], Mapping[str, str]]) -> list[T]:
    """``alerts`` sorted (stably) as Alertmanager sorts a group's alerts."""
    return sorted(alerts, key=lambda a: sort_key(labels(a)))
