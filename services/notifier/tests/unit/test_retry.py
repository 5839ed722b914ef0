"""Failure classification and the retry policy's backoff."""

from __future__ import annotations

import random

import pytest

from notifier.core.retry import FailureKind, RetryPolicy, classify_status


@pytest.mark.parametrize("status", [100, 200, 201, 204, 301, 304, 399])
def test_non_errors_are_not_failures(status: int) -> None:
    assert classify_status(status) is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, FailureKind.CLIENT_ERROR),
        (401, FailureKind.CLIENT_ERROR),
        (403, FailureKind.CLIENT_ERROR),
        (404, FailureKind.CLIENT_ERROR),
        (413, FailureKind.CLIENT_ERROR),
        (429, FailureKind.RATE_LIMITED),
        (499, FailureKind.CLIENT_ERROR),
        (500, FailureKind.SERVER_ERROR),
        (502, FailureKind.SERVER_ERROR),
        (503, FailureKind.SERVER_ERROR),
        (599, FailureKind.SERVER_ERROR),
    ],
)
def test_classify_status(status: int, kind: FailureKind) -> None:
    assert classify_status(status) is kind


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        (FailureKind.NETWORK, True),
        (FailureKind.SERVER_ERROR, True),
        (FailureKind.RATE_LIMITED, True),
        (FailureKind.CLIENT_ERROR, False),
        (FailureKind.REFUSED_TARGET, False),
        (FailureKind.NOT_CONFIGURED, False),
    ],
)
def test_retryable(kind: FailureKind, retryable: bool) -> None:
    assert kind.retryable is retryable


def test_every_failure_kind_is_classified_for_retry() -> None:
    assert {k for k in FailureKind if k.retryable} == {
        FailureKind.NETWORK,
        FailureKind.SERVER_ERROR,
        FailureKind.RATE_LIMITED,
    }


def test_delay_ceiling_grows_exponentially_up_to_max() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=30.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (50, 30.0)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays), attempt
        assert max(delays) > ceiling * 0.9, attempt  # full jitter reaches near the ceiling


def test_delay_is_never_above_max_without_retry_after() -> None:
    policy = RetryPolicy(initial_s=1.0, max_s=5.0)
    rng = random.Random(1)
    assert max(policy.delay(a, None, rng) for a in range(1, 200)) <= 5.0


def test_delay_honours_retry_after() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=30.0)
    rng = random.Random(3)
    assert all(policy.delay(1, 12.0, rng) == 12.0 for _ in range(50))
    # Retry-After above max_s is still honoured; the deadline decides whether to wait.
    assert policy.delay(1, 120.0, rng) == 120.0
    # A small Retry-After does not shorten the backoff below the jittered value.
    delays = [policy.delay(6, 0.001, rng) for _ in range(100)]
    assert all(0.001 <= d <= 16.0 for d in delays)
    assert max(delays) > 1.0


def test_delay_is_deterministic_for_a_seeded_rng() -> None:
    policy = RetryPolicy()
    a = [policy.delay(n, None, random.Random(42)) for n in range(1, 6)]
    b = [policy.delay(n, None, random.Random(42)) for n in range(1, 6)]
    assert a == b
