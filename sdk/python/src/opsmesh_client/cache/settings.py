"""Per-namespace settings: how long a value is fresh, how long it may still be served when
its loader fails, and the bounds of the in-process tier."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

NAMESPACE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}\Z")
MAX_KEY_CHARS = 512


class CacheError(ValueError):
    """A cache declared or used wrongly (a programming error, raised at the call)."""


class Strategy(enum.StrEnum):
    """How ``set`` reaches L2. WRITE_THROUGH: before ``set`` returns. WRITE_BEHIND: into
    L1 and a bounded queue that is sent to Redis in batches (``write_behind.py``)."""

    WRITE_THROUGH = "write-through"
    WRITE_BEHIND = "write-behind"


@dataclass(frozen=True, slots=True)
class Namespace:
    """One namespace's policy.

    ``stale_s``: after ``ttl_s`` a value is no longer served by ``get``, but for this long
    ``get_or_set`` still answers with it when the loader fails (stale-while-revalidate on
    failure). ``lease_s``: how long one process may hold the right to load a key before
    another may load it too (it should exceed the loader's slowest call).
    """

    name: str = "default"
    ttl_s: float = 60.0
    stale_s: float = 300.0
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    lease_s: float = 10.0
    l1: bool = True
    l2: bool = True
    # Strategies (docs/caching.md): how writes reach L2, and the write-behind queue's bounds.
    strategy: Strategy = Strategy.WRITE_THROUGH
    behind_max_pending: int = 10_000
    behind_batch: int = 500
    behind_interval_s: float = 0.05
    # Refresh-ahead: a key read by ``get_or_set`` in the last ``refresh_ahead`` fraction of
    # its TTL is reloaded in the background (0: off).
    refresh_ahead: float = 0.0
    # Adaptive TTL: when ``adaptive_max_ttl_s`` is set, a key's TTL moves between
    # ``adaptive_min_ttl_s`` and it with how often it is read and changed (``adaptive.py``).
    adaptive_min_ttl_s: float = 1.0
    adaptive_max_ttl_s: float | None = None
    # Warming: how many most-read keys are kept in Redis on close for the next run (0: off).
    warm_top_keys: int = 0
    # The share of lookups the namespace should answer from cache, 0..1 (the seed's: 0.95
    # static, 0.80 API); with a client, a hit ratio below it alerts in the mesh.
    hit_ratio_target: float | None = None

    def __post_init__(self) -> None:
        if NAMESPACE_NAME.match(self.name) is None:
            raise CacheError(f"namespace {self.name!r} does not match {NAMESPACE_NAME.pattern}")
        for field_name in ("ttl_s", "lease_s"):
            if not getattr(self, field_name) > 0:
                raise CacheError(f"{field_name} must be positive")
        if self.stale_s < 0:
            raise CacheError("stale_s must not be negative")
        if self.max_entries < 1 or self.max_bytes < 1:
            raise CacheError("max_entries and max_bytes must be at least 1")
        if not (self.l1 or self.l2):
            raise CacheError(f"namespace {self.name!r} uses neither tier")
        if self.hit_ratio_target is not None and not 0 < self.hit_ratio_target <= 1:
            raise CacheError("hit_ratio_target must be in (0, 1]")
        self._check_strategies()

    def _check_strategies(self) -> None:
        if self.strategy is Strategy.WRITE_BEHIND and not self.l2:
            raise CacheError("write-behind needs L2")
        if self.behind_max_pending < 1 or not 1 <= self.behind_batch <= self.behind_max_pending:
            raise CacheError("behind_batch must be between 1 and behind_max_pending")
        if not self.behind_interval_s > 0:
            raise CacheError("behind_interval_s must be positive")
        if not 0 <= self.refresh_ahead < 1:
            raise CacheError("refresh_ahead is a fraction of the TTL in [0, 1)")
        if self.adaptive_max_ttl_s is not None and not (
            0 < self.adaptive_min_ttl_s <= self.ttl_s <= self.adaptive_max_ttl_s
        ):
            raise CacheError("adaptive TTL needs 0 < adaptive_min_ttl_s <= ttl_s <= max")
        if self.warm_top_keys < 0:
            raise CacheError("warm_top_keys must not be negative")


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise CacheError(f"a key is a non-empty string of at most {MAX_KEY_CHARS} characters")
    return key
