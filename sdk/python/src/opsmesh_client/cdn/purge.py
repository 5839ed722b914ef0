"""``purge_everywhere(providers, request)``: one purge on every provider, for applications
that purge directly rather than through the mesh's purge events.

Providers are purged concurrently. A transient ``PurgeError`` is retried with exponential
backoff and full jitter, at most ``attempts`` tries in all; a deterministic one is not
retried. The result names, per provider, the error it ended with (None: purged), so one
provider's failure never hides another's success.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from opsmesh_client.cdn.provider import CdnProvider, PurgeError, PurgeRequest

log = logging.getLogger("opsmesh_client.cdn")


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.max_s < self.base_s:
            raise ValueError("attempts >= 1 and 0 <= base_s <= max_s")

    def delay(self, retry: int, draw: float) -> float:
        """Before retry number ``retry`` (1-based): full jitter over an exponential cap."""
        return draw * min(self.max_s, self.base_s * 2.0 ** (retry - 1))


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    provider: str
    error: PurgeError | None  # None: purged
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None


async def purge_with_retries(
    provider: CdnProvider,
    request: PurgeRequest,
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> PurgeOutcome:
    backoff = backoff or Backoff()
    draw = (rng or random.Random()).random  # noqa: S311  (jitter, not security)
    for attempt in range(1, backoff.attempts + 1):
        try:
            await provider.purge(request)
        except PurgeError as exc:
            if not exc.transient or attempt == backoff.attempts:
                return PurgeOutcome(provider.name, exc, attempt)
            log.info("purge on %s failed (%s); retry %d", provider.name, exc.reason, attempt)
            await sleep(backoff.delay(attempt, draw()))
        except Exception as exc:  # an adapter's bug must not hide the other providers' outcome
            log.exception("purge on %s raised outside its contract", provider.name)
            error = PurgeError(provider.name, f"unexpected {type(exc).__name__}", transient=False)
            return PurgeOutcome(provider.name, error, attempt)
        else:
            return PurgeOutcome(provider.name, None, attempt)
    raise AssertionError("unreachable: the loop returns on its last attempt")


async def purge_everywhere(
    providers: Sequence[CdnProvider],
    request: PurgeRequest,
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> list[PurgeOutcome]:
    """One outcome per provider, in ``providers``' order."""
    return list(
        await asyncio.gather(
            *(
                purge_with_retries(p, request, backoff=backoff, sleep=sleep, rng=rng)
                for p in providers
            )
        )
    )
