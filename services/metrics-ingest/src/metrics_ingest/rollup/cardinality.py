"""The series limits, as this replica sees them.

Three limits, each enforced group-wide (``pipeline.admission``): series per metric name,
series in all, and distinct metric names. A new series is first admitted here, against
what this replica holds; the stage then confirms it with the group-wide admission, which
may refuse it because other replicas hold the remaining slots. A series refused for its
metric's limit is remembered, so its later samples are rejected without asking again
until the next reap. A refusal for a global limit instead marks that limit reached for
the group: every new series it would apply to is then refused here at once, without
asking and without remembering each one (a flood of new names costs no memory), until
the next reap asks again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

SeriesKey = tuple[str, str]  # (metric name, series id)


class SeriesRefusal(enum.StrEnum):
    """Why a new series was refused (the ``reason`` of ``metrics_ingest_series_refused``)."""

    PER_METRIC = "per_metric"  # its metric name holds METRICS_INGEST_MAX_SERIES_PER_METRIC
    SERIES = "series"  # the group holds METRICS_INGEST_MAX_SERIES series in all
    METRIC_NAMES = "metric_names"  # a new name beyond METRICS_INGEST_MAX_METRIC_NAMES


@dataclass(frozen=True, slots=True)
class SeriesLimits:
    """0 turns a limit off."""

    per_metric: int = 0
    series: int = 0
    metric_names: int = 0

    def __bool__(self) -> bool:
        return bool(self.per_metric or self.series or self.metric_names)


class SeriesLimit:
    def __init__(self, limits: SeriesLimits) -> None:
        self.limits = limits
        self._members: dict[str, set[str]] = {}
        self._total = 0  # series held, all names
        self._names = 0  # names holding at least one series
        self._refused: dict[str, set[str]] = {}
        self._reached: set[SeriesRefusal] = set()  # global limits the group has reached
        self._unconfirmed: dict[SeriesKey, None] = {}  # insertion-ordered
        # Samples of refused series since the last take: per metric name for the per-metric
        # limit (names held here, so bounded), per reason for all.
        self._rejected: dict[str, int] = {}
        self._refusals: dict[SeriesRefusal, int] = {}

    @property
    def total(self) -> int:
        return self._total

    @property
    def names(self) -> int:
        return self._names

    def holds(self, name: str, series: str) -> bool:
        members = self._members.get(name)
        return members is not None and series in members

    def admit(self, name: str, series: str) -> bool:
        """Whether a series this replica does not hold yet may start; counts a rejection."""
        members = self._members.get(name)
        if members is not None and series in members:
            return True
        refused = self._refused.get(name)
        if refused is not None and series in refused:
            self.count_rejected(name, 1, SeriesRefusal.PER_METRIC)
            return False
        reason = self._over(name, members)
        if reason is not None:
            self.count_rejected(name, 1, reason)
            return False
        if members is None:
            members = self._members[name] = set()
        if not members:
            self._names += 1
        members.add(series)
        self._total += 1
        if self.limits:
            self._unconfirmed[(name, series)] = None
        return True

    def _over(self, name: str, members: set[str] | None) -> SeriesRefusal | None:
        limits = self.limits
        if not limits:
            return None
        held = len(members) if members is not None else 0
        if limits.per_metric and held >= limits.per_metric:
            return SeriesRefusal.PER_METRIC
        if limits.series and (
            self._total >= limits.series or SeriesRefusal.SERIES in self._reached
        ):
            return SeriesRefusal.SERIES
        if (
            limits.metric_names
            and not held
            and (self._names >= limits.metric_names or SeriesRefusal.METRIC_NAMES in self._reached)
        ):
            return SeriesRefusal.METRIC_NAMES
        return None

    def unconfirmed(self) -> list[SeriesKey]:
        """Series admitted here and not yet confirmed group-wide, in admission order."""
        return list(self._unconfirmed)

    def confirmed(self, series: Iterable[SeriesKey]) -> None:
        for key in series:
            self._unconfirmed.pop(key, None)

    def refuse(
        self, series: Iterable[SeriesKey], reason: SeriesRefusal = SeriesRefusal.PER_METRIC
    ) -> None:
        """The group-wide admission said no: the slot is freed; the series is remembered
        (its metric's limit) or the global limit marked reached."""
        for name, one in series:
            self._drop(name, one)
            if reason is SeriesRefusal.PER_METRIC:
                self._refused.setdefault(name, set()).add(one)
            else:
                self._reached.add(reason)

    def release(self, name: str, series: str) -> None:
        self._drop(name, series)

    def _drop(self, name: str, series: str) -> None:
        self._unconfirmed.pop((name, series), None)
        members = self._members.get(name)
        if members is not None and series in members:
            members.discard(series)
            self._total -= 1
            if not members:
                self._names -= 1
                del self._members[name]

    def forgive(self) -> None:
        """Let refused series ask again (slots may have been freed since)."""
        self._refused.clear()
        self._reached.clear()

    def count_rejected(self, name: str, samples: int, reason: SeriesRefusal) -> None:
        if reason is SeriesRefusal.PER_METRIC:
            self._rejected[name] = self._rejected.get(name, 0) + samples
        self._refusals[reason] = self._refusals.get(reason, 0) + samples

    def take_rejected(self) -> dict[str, int]:
        """Samples rejected by the per-metric limit, per metric name, since the last call."""
        taken, self._rejected = self._rejected, {}
        return taken

    def take_refusals(self) -> dict[SeriesRefusal, int]:
        """Samples of refused series per reason (every limit) since the last call."""
        taken, self._refusals = self._refusals, {}
        return taken

    def counts(self) -> dict[str, int]:
        return {name: len(members) for name, members in self._members.items()}

    def held(self) -> list[SeriesKey]:
        return [(name, one) for name, members in self._members.items() for one in members]
