"""The per-metric series limit, as this replica sees it.

A new series is first admitted here, against the series this replica holds; the stage
then confirms it with the group-wide admission (``pipeline.admission``), which may refuse
it because other replicas hold the metric's remaining slots. A refused series is
remembered, so its later samples are rejected without asking again until the next reap.
"""

from __future__ import annotations

from collections.abc import Iterable

SeriesKey = tuple[str, str]  # (metric name, series id)


class SeriesLimit:
    def __init__(self, max_per_metric: int) -> None:
        self.max_per_metric = max_per_metric  # 0: no limit
        self._members: dict[str, set[str]] = {}
        self._refused: dict[str, set[str]] = {}
        self._unconfirmed: dict[SeriesKey, None] = {}  # insertion-ordered
        self._rejected: dict[str, int] = {}  # samples per metric name, since the last take

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
            self.count_rejected(name, 1)
            return False
        if members is None:
            members = self._members[name] = set()
        if self.max_per_metric and len(members) >= self.max_per_metric:
            self.count_rejected(name, 1)
            return False
        members.add(series)
        if self.max_per_metric:
            self._unconfirmed[(name, series)] = None
        return True

    def unconfirmed(self) -> list[SeriesKey]:
        """Series admitted here and not yet confirmed group-wide, in admission order."""
        return list(self._unconfirmed)

    def confirmed(self, series: Iterable[SeriesKey]) -> None:
        for key in series:
            self._unconfirmed.pop(key, None)

    def refuse(self, series: Iterable[SeriesKey]) -> None:
        """The group-wide admission said no: the slot is freed and the series remembered."""
        for name, one in series:
            self._unconfirmed.pop((name, one), None)
            members = self._members.get(name)
            if members is not None:
                members.discard(one)
            self._refused.setdefault(name, set()).add(one)

    def release(self, name: str, series: str) -> None:
        members = self._members.get(name)
        if members is not None:
            members.discard(series)
        self._unconfirmed.pop((name, series), None)

    def forgive(self) -> None:
        """Let refused series ask again (slots may have been freed since)."""
        self._refused.clear()

    def count_rejected(self, name: str, samples: int) -> None:
        self._rejected[name] = self._rejected.get(name, 0) + samples

    def take_rejected(self) -> dict[str, int]:
        """Samples of new series rejected per metric name since the last call."""
        taken, self._rejected = self._rejected, {}
        return taken

    def counts(self) -> dict[str, int]:
        return {name: len(members) for name, members in self._members.items()}

    def held(self) -> list[SeriesKey]:
        return [(name, one) for name, members in self._members.items() for one in members]
