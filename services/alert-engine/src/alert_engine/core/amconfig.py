"""Alertmanager configuration files, accepted as they are.

The shared loader (``opsmesh.alertmanager``) checks the whole file as Alertmanager does
(shape, ``global`` defaults, integrations, unimplemented integrations); here the
``global.resolve_timeout``, ``route``, ``inhibit_rules``, ``time_intervals`` (and the
older ``mute_time_intervals``) and ``receivers`` sections become the engine's values
(the notifier reads the receivers' integration settings from the same loader). Errors
name where they are, e.g. ``route.routes[1].matchers[0]``, and never quote the file (a
line may hold a secret). The configuration kept for ``/api/v2/status`` is the loader's
document with its secrets masked (``opsmesh.alertmanager.redaction``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alert_engine.core.inhibition import InhibitRule
from alert_engine.core.matchers import (
    Matcher,
    MatcherError,
    MatchType,
    parse_matchers,
)
from alert_engine.core.routing import Route, child_key
from alert_engine.core.timeintervals import TimeInterval, TimeIntervalError, parse_time_interval
from alert_engine.core.validation import text_problem
from opsmesh.alertmanager import AlertmanagerConfigError, load_text
from opsmesh.durations import parse_duration
from opsmesh.send_resolved import receiver_sends_resolved

DEFAULT_RESOLVE_TIMEOUT_S = 300.0
DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0
MAX_RECEIVER_NAME = 200  # opsmesh.events.base.Name


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    integrations: tuple[str, ...] = ()  # e.g. ("webhook", "slack")
    # Whether any integration sends resolved notifications (Alertmanager's per-integration
    # send_resolved, with its defaults): when none does, resolved alerts alone never
    # cause a notification (the flush decision's dedup).
    send_resolved: bool = True


@dataclass(frozen=True, slots=True)
class EngineConfig:
    route: Route
    receivers: tuple[Receiver, ...]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: Mapping[str, TimeInterval] = field(default_factory=dict)
    resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S
    original: str = ""  # the configuration as YAML, secrets masked (Alertmanager's)
    _without_resolved: frozenset[str] = field(
        default=frozenset(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        quiet = frozenset(r.name for r in self.receivers if not r.send_resolved)
        object.__setattr__(self, "_without_resolved", quiet)

    def sends_resolved(self, receiver: str) -> bool:
        return receiver not in self._without_resolved


def default_config(receiver: str = "default", **route: Any) -> EngineConfig:
    return EngineConfig(route=Route(receiver=receiver, **route), receivers=(Receiver(receiver),))


def parse_config(text: str, base_dir: Path | None = None) -> EngineConfig:
    """``base_dir``: where relative ``*_file`` paths are taken from (the file's directory)."""
    try:
        loaded = load_text(text, base_dir=base_dir)
    except AlertmanagerConfigError as exc:
        raise ConfigError(str(exc)) from None
    raw = loaded.document
    glob = _mapping(raw.get("global") or {}, "global")
    resolve_timeout = _duration(
        glob.get("resolve_timeout"), "global.resolve_timeout", DEFAULT_RESOLVE_TIMEOUT_S
    )
    receivers = _receivers(raw.get("receivers") or [])
    names = {r.name for r in receivers}
    intervals: dict[str, TimeInterval] = {}
    for section in ("time_intervals", "mute_time_intervals"):
        for i, raw_item in enumerate(_list(raw.get(section) or [], section)):
            item = _mapping(raw_item, f"{section}[{i}]")
            name = str(item.get("name") or "")
            if not name:
                raise ConfigError(f"{section}[{i}]: name is required")
            if name in intervals:
                raise ConfigError(f"{section}[{i}]: time interval {name!r} defined twice")
            try:
                intervals[name] = parse_time_interval(
                    name, _list(item.get("time_intervals") or [], f"{section}[{i}].time_intervals")
                )
            except TimeIntervalError as exc:
                raise ConfigError(f"{section}[{i}]: {exc}") from None
    route_raw = raw.get("route")
    if route_raw is None:
        raise ConfigError("route: a root route is required")
    root = _route(
        _mapping(route_raw, "route"), None, "route", "0", receivers=names, intervals=intervals
    )
    inhibit = tuple(
        _inhibit(_mapping(item, f"inhibit_rules[{i}]"), f"inhibit_rules[{i}]")
        for i, item in enumerate(_list(raw.get("inhibit_rules") or [], "inhibit_rules"))
    )
    return EngineConfig(
        root, tuple(receivers), inhibit, intervals, resolve_timeout, loaded.original
    )


def _receivers(items: Any) -> list[Receiver]:
    out: list[Receiver] = []
    seen: set[str] = set()
    for i, raw_item in enumerate(_list(items, "receivers")):
        item = _mapping(raw_item, f"receivers[{i}]")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"receivers[{i}]: name is required")
        if len(name) > MAX_RECEIVER_NAME or text_problem(name) is not None:
            # Receiver names travel in every notification request (at most 200 chars).
            raise ConfigError(
                f"receivers[{i}]: name must be 1..{MAX_RECEIVER_NAME} characters of text"
            )
        if name in seen:
            raise ConfigError(f"receivers[{i}]: receiver {name!r} defined twice")
        seen.add(name)
        integrations = tuple(
            key.removesuffix("_configs") for key in item if key.endswith("_configs") and item[key]
        )
        labels = {
            str(k): str(v)
            for k, v in _mapping(item.get("labels") or {}, f"receivers[{i}].labels").items()
        }
        out.append(Receiver(name, labels, integrations, receiver_sends_resolved(item)))
    return out


def _route(
    raw: Mapping[str, Any],
    parent: Route | None,
    where: str,
    route_id: str,
    *,
    receivers: set[str],
    intervals: Mapping[str, TimeInterval],
) -> Route:
    known = {
        "receiver",
        "group_by",
        "continue",
        "matchers",
        "match",
        "match_re",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "mute_time_intervals",
        "active_time_intervals",
        "routes",
        "labels",
    }
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    # Sorted by (name, value, type) as Alertmanager's NewRoute does, so route keys (and so
    # group keys) print as Alertmanager prints them whatever the order in the file.
    matchers = sorted(_route_matchers(raw, where), key=_matcher_order)
    if parent is None:
        if matchers:
            raise ConfigError(f"{where}: the root route must not have matchers")
        if raw.get("continue"):
            raise ConfigError(f"{where}: the root route cannot have continue")
        for section in ("mute_time_intervals", "active_time_intervals"):
            if raw.get(section):
                raise ConfigError(f"{where}: the root route cannot have {section}")
    receiver = raw.get("receiver") or (parent.receiver if parent else None)
    if not receiver:
        raise ConfigError(f"{where}: the root route needs a receiver")
    if receiver not in receivers:
        raise ConfigError(f"{where}.receiver: undefined receiver {receiver!r}")
    group_by = _group_by(raw, parent, where)
    wait = _duration(
        raw.get("group_wait"),
        f"{where}.group_wait",
        parent.group_wait_s if parent else DEFAULT_GROUP_WAIT_S,
    )
    interval = _duration(
        raw.get("group_interval"),
        f"{where}.group_interval",
        parent.group_interval_s if parent else DEFAULT_GROUP_INTERVAL_S,
    )
    if interval <= 0:
        raise ConfigError(f"{where}.group_interval: must be positive")
    repeat = _duration(
        raw.get("repeat_interval"),
        f"{where}.repeat_interval",
        parent.repeat_interval_s if parent else DEFAULT_REPEAT_INTERVAL_S,
    )
    if repeat <= 0:
        raise ConfigError(f"{where}.repeat_interval: must be positive")
    # Not inherited: Alertmanager takes each route's own time intervals (dispatch/route.go,
    # alertmanager#3211), so a parent's mute does not mute its children.
    mute = _interval_names(raw, "mute_time_intervals", where, intervals)
    active = _interval_names(raw, "active_time_intervals", where, intervals)
    key = "{}" if parent is None else child_key(parent.key, matchers)
    labels = dict(parent.labels) if parent else {}
    labels.update(
        {str(k): str(v) for k, v in _mapping(raw.get("labels") or {}, f"{where}.labels").items()}
    )
    node = Route(
        receiver=receiver,
        group_by=group_by,
        group_wait_s=wait,
        group_interval_s=interval,
        repeat_interval_s=repeat,
        key=key,
        matchers=tuple(matchers),
        continue_matching=bool(raw.get("continue", False)),
        mute_time_intervals=mute,
        active_time_intervals=active,
        id=route_id,
        labels=labels,
    )
    children = tuple(
        _route(
            _mapping(child, f"{where}.routes[{i}]"),
            node,
            f"{where}.routes[{i}]",
            f"{route_id}.{i}",
            receivers=receivers,
            intervals=intervals,
        )
        for i, child in enumerate(_list(raw.get("routes") or [], f"{where}.routes"))
    )
    return Route(**{**_fields(node), "routes": children})


def _fields(route: Route) -> dict[str, Any]:
    return {name: getattr(route, name) for name in Route.__dataclass_fields__}


def _group_by(raw: Mapping[str, Any], parent: Route | None, where: str) -> tuple[str, ...]:
    if "group_by" not in raw:
        return parent.group_by if parent else ()
    names = _list(raw["group_by"] or [], f"{where}.group_by")
    if "..." in names and len(names) > 1:
        raise ConfigError(f"{where}.group_by: '...' must be the only entry")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"{where}.group_by: label {str(name)!r} listed twice")
    return tuple(str(n) for n in names)


_TYPE_ORDER = {
    MatchType.EQUAL: 0,
    MatchType.NOT_EQUAL: 1,
    MatchType.REGEX: 2,
    MatchType.NOT_REGEX: 3,
}


def _matcher_order(m: Matcher) -> tuple[str, str, int]:
    return (m.name, m.value, _TYPE_ORDER[m.type])


def _route_matchers(raw: Mapping[str, Any], where: str) -> list[Matcher]:
    out: list[Matcher] = []
    try:
        for i, text in enumerate(_list(raw.get("matchers") or [], f"{where}.matchers")):
            try:
                # As Alertmanager's ParseMatchers: an entry may hold several matchers.
                out.extend(parse_matchers(str(text)))
            except MatcherError as exc:
                raise ConfigError(f"{where}.matchers[{i}]: {exc}") from None
        for name, value in _mapping(raw.get("match") or {}, f"{where}.match").items():
            out.append(Matcher(str(name), MatchType.EQUAL, str(value)))
        for name, value in _mapping(raw.get("match_re") or {}, f"{where}.match_re").items():
            out.append(Matcher(str(name), MatchType.REGEX, str(value)))
    except MatcherError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return out


_INHIBIT_FIELDS = {
    "name",
    "equal",
    "source_matchers",
    "source_match",
    "source_match_re",
    "target_matchers",
    "target_match",
    "target_match_re",
}


def _inhibit(raw: Mapping[str, Any], where: str) -> InhibitRule:
    unknown = set(raw) - _INHIBIT_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")

    def side(prefix: str) -> tuple[Matcher, ...]:
        return tuple(
            _route_matchers(
                {
                    "matchers": raw.get(f"{prefix}_matchers") or [],
                    "match": raw.get(f"{prefix}_match") or {},
                    "match_re": raw.get(f"{prefix}_match_re") or {},
                },
                f"{where}.{prefix}",
            )
        )

    equal = tuple(str(n) for n in _list(raw.get("equal") or [], f"{where}.equal"))
    return InhibitRule(side("source"), side("target"), equal, str(raw.get("name") or ""))


def _interval_names(
    raw: Mapping[str, Any],
    section: str,
    where: str,
    intervals: Mapping[str, TimeInterval],
) -> tuple[str, ...]:
    if section not in raw:
        return ()
    names = tuple(str(n) for n in _list(raw[section] or [], f"{where}.{section}"))
    for name in names:
        if name not in intervals:
            raise ConfigError(f"{where}.{section}: undefined time interval {name!r}")
    return names


def _duration(value: Any, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return value
