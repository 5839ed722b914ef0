"""Retry policy: exponential backoff with full jitter, bounded by a deadline.

Errors are classified at the boundary: network errors, 5xx and 429 retry (honouring
Retry-After); other 4xx do not, since sending the same request again cannot succeed;
neither do a refused target, a redirect (never followed), a template that fails or a
channel that raised unexpectedly (``INTERNAL``: the same request would fail the same
way, so it is dead-lettered with its reason instead of crashing its lane).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


class FailureKind(enum.StrEnum):
    NETWORK = "network"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    REFUSED_TARGET = "refused_target"
    REDIRECTED = "redirected"
    NOT_CONFIGURED = "not_configured"
    TEMPLATE = "template"
    UNSTORABLE = "unstorable"
    INTERNAL = "internal"

    @property
    def retryable(self) -> bool:
        return self in (FailureKind.NETWORK, FailureKind.SERVER_ERROR, FailureKind.RATE_LIMITED)


def classify_status(status: int) -> FailureKind | None:
    if status < 400:
        return None
    if status == 429:
        return FailureKind.RATE_LIMITED
    if status >= 500:
        return FailureKind.SERVER_ERROR
    return FailureKind.CLIENT_ERROR


def retry_after_s(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 0.5
    max_s: float = 30.0
    deadline_s: float = 300.0

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Delay before attempt ``attempt + 1`` (attempts count from 1)."""
        ceiling = min(self.max_s, self.initial_s * (2 ** (attempt - 1)))
        jittered = rng.uniform(0, ceiling)
        return max(jittered, retry_after_s or 0.0)
