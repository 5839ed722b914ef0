"""The CDN purge worker's pure parts: the plan of an event, the attempts against a
provider in simulated time, and the dead-letter signal against the catalogue."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from notifier.core.breaker import CircuitBreaker
from notifier.core.purge_attempts import Attempted, PurgeStopped, purge_with_retries
from notifier.core.purge_plan import (
    DeadLetterCounts,
    PurgeFailure,
    integration,
    plan_purge,
    provider_of,
    purge_id_of,
    purge_key,
)
from notifier.core.retry import RetryPolicy
from notifier.delivery.dead_letters import Letter
from opsmesh import catalogue
from opsmesh.events.cdn import CdnPurgeRequested, CdnPurgeScope
from opsmesh.kafka import dlq
from opsmesh.kafka.codec import encode
from opsmesh_client.cdn.provider import (
    CdnProvider,
    ImageTransform,
    PurgeError,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0


def event(**changes: object) -> CdnPurgeRequested:
    fields: dict[str, object] = {
        "id": "deploy-1",
        "scope": CdnPurgeScope.URL,
        "values": ["https://cdn.example.com/a.css"],
        "source": "deploy",
        "requested_at": T0,
    }
    fields.update(changes)
    return CdnPurgeRequested(**fields)  # type: ignore[arg-type]


@dataclass
class FakeProvider:
    """A provider that fails with the errors it is given, in order, then succeeds."""

    name: str = "edge"
    errors: list[BaseException] = field(default_factory=list)
    calls: list[PurgeRequest] = field(default_factory=list)

    @property
    def limits(self) -> PurgeLimits:
        return PurgeLimits(max_values_per_call=30)

    async def purge(self, request: PurgeRequest) -> None:
        self.calls.append(request)
        if self.errors:
            raise self.errors.pop(0)

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        return f"https://{self.name}.example.com/{path}"


@dataclass
class SimulatedSleep:
    """Waits by moving the fake clock; ``stop_after`` waits in, says the service stops."""

    clock: FakeClock
    waits: list[float] = field(default_factory=list)
    stop_after: int | None = None

    async def __call__(self, seconds: float) -> bool:
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            return True
        self.waits.append(seconds)
        self.clock.advance(seconds)
        return False


def test_the_event_scopes_are_the_sdks() -> None:
    assert {s.value for s in CdnPurgeScope} == {s.value for s in PurgeScope}


def test_the_fake_is_a_provider() -> None:
    assert isinstance(FakeProvider(), CdnProvider)


def test_keys_and_integrations_round_trip() -> None:
    assert purge_id_of(purge_key("deploy-1")) == "deploy-1"
    assert provider_of(integration("fastly")) == "fastly"
    assert purge_id_of("a-notification-key") is None
    assert provider_of("webhook-0") is None


def test_a_purge_goes_to_every_configured_provider_by_default() -> None:
    plan = plan_purge(event(), ["cloudflare", "fastly"])
    assert plan.problem is None
    assert plan.providers == ("cloudflare", "fastly")
    assert plan.request == PurgeRequest(PurgeScope.URL, ("https://cdn.example.com/a.css",))
    assert plan.pairs == [
        (purge_key("deploy-1"), "cdn:cloudflare"),
        (purge_key("deploy-1"), "cdn:fastly"),
    ]
    assert plan.owed == 2


def test_named_providers_are_purged_and_unknown_ones_are_owed_a_dead_letter() -> None:
    plan = plan_purge(event(providers=["fastly", "akamai", "fastly"]), ["cloudflare", "fastly"])
    assert plan.providers == ("fastly",)
    assert plan.unknown == ("akamai",)
    assert plan.owed == 2


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"scope": CdnPurgeScope.ALL, "values": ["x"]}, "takes no values"),
        ({"scope": CdnPurgeScope.TAG, "values": []}, "needs at least one value"),
    ],
)
def test_an_event_no_provider_can_act_on_is_rejected(changes: dict[str, object], why: str) -> None:
    plan = plan_purge(event(**changes), ["fastly"])
    assert plan.problem is not None
    assert why in plan.problem
    assert plan.owed == 1


def test_without_providers_an_event_is_rejected() -> None:
    plan = plan_purge(event(), [])
    assert plan.problem is not None
    assert "no CDN provider" in plan.problem


def test_repeated_values_are_purged_once() -> None:
    plan = plan_purge(event(values=["u", "v", "u"]), ["fastly"])
    assert plan.request is not None
    assert plan.request.values == ("u", "v")


# -- attempts, in simulated time ------------------------------------------------------


POLICY = RetryPolicy(initial_s=1.0, max_s=8.0, deadline_s=60.0)


async def attempt(
    provider: FakeProvider,
    clock: FakeClock,
    sleep: SimulatedSleep,
    breaker: CircuitBreaker | None = None,
) -> Attempted:
    return await purge_with_retries(
        provider,
        PurgeRequest(PurgeScope.ALL),
        policy=POLICY,
        breaker=breaker or CircuitBreaker(5, 10.0),
        monotonic=clock.monotonic,
        sleep=sleep,
        rng=random.Random(1),
    )


async def test_a_transient_failure_is_retried_with_backoff_until_it_succeeds() -> None:
    clock = FakeClock()
    sleep = SimulatedSleep(clock)
    provider = FakeProvider(errors=[PurgeError("edge", "HTTP 503", transient=True)] * 3)
    result = await attempt(provider, clock, sleep)
    assert result.ok
    assert result.attempts == 4
    assert len(provider.calls) == 4
    # Full jitter under a ceiling doubling from 1 s: each wait at most 1, 2, 4 s.
    assert len(sleep.waits) == 3
    assert all(w <= ceiling for w, ceiling in zip(sleep.waits, [1, 2, 4], strict=True))


async def test_a_deterministic_failure_is_not_retried() -> None:
    clock = FakeClock()
    provider = FakeProvider(errors=[PurgeError("edge", "HTTP 403 bad token", transient=False)])
    result = await attempt(provider, clock, SimulatedSleep(clock))
    assert not result.ok
    assert result.failure is PurgeFailure.DETERMINISTIC
    assert result.attempts == 1
    assert result.error == "HTTP 403 bad token"


async def test_a_provider_that_raises_something_else_is_classified_not_crashed() -> None:
    clock = FakeClock()
    provider = FakeProvider(errors=[KeyError("zone"), ConnectionResetError("reset")])
    result = await attempt(provider, clock, SimulatedSleep(clock))
    assert result.failure is PurgeFailure.DETERMINISTIC
    assert "KeyError" in (result.error or "")
    clock = FakeClock()
    provider = FakeProvider(errors=[ConnectionResetError("reset")])
    result = await attempt(provider, clock, SimulatedSleep(clock))
    assert result.ok  # a network error is transient: retried, then it succeeded
    assert result.attempts == 2


async def test_transient_failures_stop_at_the_deadline() -> None:
    clock = FakeClock()
    sleep = SimulatedSleep(clock)
    provider = FakeProvider(errors=[PurgeError("edge", "HTTP 502", transient=True)] * 1000)
    result = await attempt(provider, clock, sleep)
    assert not result.ok
    assert result.failure is PurgeFailure.RETRIES_EXHAUSTED
    assert "HTTP 502" in (result.error or "")
    assert clock.monotonic() <= POLICY.deadline_s
    assert result.attempts == len(provider.calls) > 3


async def test_an_open_breaker_holds_the_next_attempt() -> None:
    clock = FakeClock()
    sleep = SimulatedSleep(clock)
    breaker = CircuitBreaker(failure_threshold=2, open_s=30.0)
    provider = FakeProvider(errors=[PurgeError("edge", "timeout", transient=True)] * 2)
    result = await attempt(provider, clock, sleep, breaker=breaker)
    assert result.ok
    # The second failure opened the breaker: the third call came the breaker's 30 s after
    # it (the backoff's wait included), not the backoff's few seconds.
    assert len(provider.calls) == 3
    assert sum(sleep.waits[1:]) >= 30.0 - 1e-6


async def test_a_stop_leaves_the_purge_unfinished() -> None:
    clock = FakeClock()
    provider = FakeProvider(errors=[PurgeError("edge", "HTTP 503", transient=True)] * 5)
    with pytest.raises(PurgeStopped):
        await attempt(provider, clock, SimulatedSleep(clock, stop_after=1))


# -- the dead-letter signal -----------------------------------------------------------


def test_the_dead_letter_signal_is_the_catalogues_and_counts_per_provider() -> None:
    counts = DeadLetterCounts()
    first = counts.signal("fastly", PurgeFailure.DETERMINISTIC, 1, T0, "cdn:fastly: 403")
    counts.signal("cloudflare", PurgeFailure.RETRIES_EXHAUSTED, 7, T0, "cdn:cloudflare: 503")
    second = counts.signal("fastly", PurgeFailure.RETRIES_EXHAUSTED, 9, T0 + 1, "x")
    assert catalogue.problems(first) == []
    assert first.name == catalogue.CDN_PURGE_DEAD_LETTERED.name
    assert (first.value, second.value) == (1.0, 2.0)
    assert second.labels == {"provider": "fastly", "failure": "retries_exhausted"}
    assert second.stats == {"attempts": 9.0}


# -- a purge's dead letter, as the dead-letters API reads it --------------------------


def test_a_purge_letter_reads_in_the_delivery_logs_terms() -> None:
    purge = event(providers=["fastly"])
    letter = Letter(
        partition=1,
        offset=7,
        key=b"deploy-1",
        value=encode(purge),
        headers=(
            (dlq.HEADER_REASON, b"delivery_failed"),
            (dlq.HEADER_ERROR, b"cdn:fastly: deterministic: HTTP 403"),
            (dlq.HEADER_TOPIC, b"opsmesh.cdn-purges"),
        ),
    )
    row = letter.json()
    assert row["integration"] == integration("fastly")
    assert row["idempotency_key"] == purge_key("deploy-1")
    assert row["receiver"] == "cdn"
    assert (row["purge_id"], row["scope"], row["providers"]) == ("deploy-1", "url", ["fastly"])
