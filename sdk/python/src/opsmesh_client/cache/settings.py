"""Per-namespace settings: how long a value is fresh, how long it may still be served when
its loader fails, and the bounds of the in-process tier."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}\Z")
MAX_KEY_CHARS = 512


class CacheError(ValueError):
    """A cache declared or used wrongly (a programming error, raised at the call)."""


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


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise CacheError(f"a key is a non-empty string of at most {MAX_KEY_CHARS} characters")
    return key
