"""The routing tree, with Alertmanager's matching and inheritance rules.

An alert walks the tree from the root (which matches everything). At each node the
children are tried in order; a matching child without ``continue`` stops the walk among
its siblings; if no child matches, the node itself takes the alert. Children inherit the
receiver, grouping and timers of their parent unless they set their own; like Alertmanager,
they do not inherit its mute/active time intervals.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from alert_engine.core.matchers import Matcher, format_matchers, matches_all

ALL_LABELS = "..."


@dataclass(frozen=True, slots=True)
class Route:
    receiver: str
    group_by: tuple[str, ...] = ("alertname",)
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    key: str = "{}"
    matchers: tuple[Matcher, ...] = ()
    continue_matching: bool = False
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    # Unique among routes (sibling routes may share a key); "0", "0.1", "0.1.0", ...
    id: str = "0"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.group_interval_s <= 0:
            raise ValueError("group_interval must be positive")
        # Alertmanager rounds repeat_interval up to a multiple of group_interval.
        rounded = math.ceil(self.repeat_interval_s / self.group_interval_s) * self.group_interval_s
        object.__setattr__(self, "repeat_interval_s", rounded)

    @property
    def groups_by_all(self) -> bool:
        return ALL_LABELS in self.group_by

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with these labels (Alertmanager ``Route.Match``)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            taken = child.match(labels)
            found.extend(taken)
            if taken and not child.continue_matching:
                break
        return found or [self]

    def walk(self) -> list[Route]:
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.groups_by_all:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """``<route key>:<group labels>``, printed as Alertmanager prints them (bounded:
        ``bounded_key``)."""
        return bounded_key(f"{self.key}:{format_label_set(self.group_labels(labels))}")


MAX_GROUP_KEY = 4096  # the events' limit (AlertsRouted, NotificationRequested)


def bounded_key(key: str) -> str:
    """The key as it is, or, past ``MAX_GROUP_KEY`` (grouping by many long labels), its
    start and a SHA-256 of the whole: still one key per group, and one the events carry
    (a longer one made the record undeliverable, the alert silently lost)."""
    if len(key) <= MAX_GROUP_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{key[: MAX_GROUP_KEY - 80]}...sha256:{digest}"


def format_label_set(labels: Mapping[str, str]) -> str:
    """Alertmanager's ``LabelSet.String()``: ``{a="1", b="2"}`` with quoted, escaped values,
    so a value holding ``", x="`` cannot make two label sets print alike."""
    inner = ", ".join(f"{k}={json.dumps(labels[k], ensure_ascii=False)}" for k in sorted(labels))
    return "{" + inner + "}"


def child_key(parent_key: str, matchers: Sequence[Matcher]) -> str:
    return f"{parent_key}/{format_matchers(matchers)}"
