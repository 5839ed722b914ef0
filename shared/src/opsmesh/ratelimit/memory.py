"""The buckets in this process: the twin of ``RedisRateLimiter`` (the same GCRA steps),
and the per-process fallback while Redis fails (``FallbackRateLimiter``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opsmesh.ratelimit import gcra
from opsmesh.ratelimit.base import Ask
from opsmesh.ratelimit.gcra import Admission, Rate

# Past this many buckets, the full ones (whose state no longer matters) are forgotten,
# as Redis expires their keys; the next sweep waits until the live ones have doubled.
_PRUNE_ABOVE = 1024


class MemoryRateLimiter:
    """``clock``: the time the buckets run on (a monotonic reading suits a process
    alone; the caller's wall clock when it must match a Redis limiter given the same)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._prune_above = _PRUNE_ABOVE

    async def try_take(self, asks: Sequence[Ask]) -> list[Admission]:
        now = self._clock()
        out = []
        for key, rate in asks:
            admission, tat = gcra.try_take(self._tats.get(key), now, rate)
            self._keep(key, tat, now)
            out.append(admission)
        return out

    async def reserve(self, key: str, rate: Rate) -> float:
        now = self._clock()
        wait, tat = gcra.reserve(self._tats.get(key), now, rate)
        self._keep(key, tat, now)
        return wait

    async def push_back(self, key: str, rate: Rate, seconds: float) -> None:
        now = self._clock()
        self._keep(key, gcra.push_back(self._tats.get(key), now, rate, seconds), now)

    def _keep(self, key: str, tat: float | None, now: float) -> None:
        if tat is None:
            return
        self._tats[key] = tat
        if len(self._tats) > self._prune_above:
            self._tats = {k: t for k, t in self._tats.items() if gcra.expires_in(t, now) > 0}
            self._prune_above = max(_PRUNE_ABOVE, 2 * len(self._tats))
