"""Handler failures by class: retry what may pass by itself, isolate what never will.

- ``TRANSIENT``: the same call may succeed later without any change to its input — a
  connection refused or reset, a timeout, a broker without a leader, PostgreSQL restarting
  or cancelling a statement, Redis loading or failing over. The consumer retries the same
  batch with backoff, within a bound.
- ``DETERMINISTIC``: everything else. The same input fails the same way (PostgreSQL
  refusing a NUL byte or an out-of-range number, a constraint, a ``KeyError`` in the
  handler), so retrying it is a stall, not a recovery: the consumer isolates the records
  that fail and dead-letters them.

A handler that knows better classifies its own exceptions (``ClassifiesFailures``);
``None`` from it falls back to ``classify``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import psycopg
import redis.exceptions as redis_errors
from aiokafka import errors as kafka_errors


class FailureClass(enum.StrEnum):
    TRANSIENT = "transient"
    DETERMINISTIC = "deterministic"


@runtime_checkable
class ClassifiesFailures(Protocol):
    """Optional for handlers: the class of an exception their ``handle`` raised, or
    ``None`` to use the kit's ``classify``."""

    def classify_failure(self, exc: BaseException) -> FailureClass | None: ...


# OSError covers ConnectionError and TimeoutError (asyncio.TimeoutError is TimeoutError).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    # Connection lost or refused, admin shutdown, statement timeout, serialization
    # failure and deadlock, too many connections, disk full, the pool's timeout: all
    # OperationalError in psycopg 3.
    psycopg.OperationalError,
    psycopg.InterfaceError,
    redis_errors.ConnectionError,  # BusyLoadingError and MaxConnectionsError included
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica promoted under us: retry on the new primary
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.MasterDownError,
    # Not flagged retriable by aiokafka, but each means "the broker did not answer in
    # time / is not there", which passes with the outage.
    kafka_errors.KafkaTimeoutError,
    kafka_errors.KafkaUnavailableError,
    kafka_errors.BrokerNotAvailableError,
)

# The exception to the above: PostgreSQL's class 54, "program limit exceeded" (an index
# row or a statement too large, too many columns or arguments), is an OperationalError
# caused by the data itself.
_PG_LIMITS = "54"

# Chained causes followed at most this deep (``raise Wrapped from cause``).
_MAX_DEPTH = 8


def classify(exc: BaseException) -> FailureClass:
    """The class of one failure: transient when it, an exception it was raised ``from``,
    or (for an exception group) any member is transient; deterministic otherwise."""
    return FailureClass.TRANSIENT if _transient(exc, _MAX_DEPTH) else FailureClass.DETERMINISTIC


def _transient(exc: BaseException, depth: int) -> bool:
    if depth <= 0:
        return False
    if isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith(_PG_LIMITS):
        return False
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, kafka_errors.KafkaError) and exc.retriable:
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_transient(inner, depth - 1) for inner in exc.exceptions)
    cause = exc.__cause__
    return cause is not None and _transient(cause, depth - 1)


def classifier_for(handler: object) -> Callable[[BaseException], FailureClass]:
    """``classify``, consulting ``handler`` first when it classifies its own failures."""
    if not isinstance(handler, ClassifiesFailures):
        return classify
    own = handler

    def classify_with_handler(exc: BaseException) -> FailureClass:
        found = own.classify_failure(exc)
        return found if found is not None else classify(exc)

    return classify_with_handler


def describe(exc: BaseException, limit: int = 1000) -> str:
    """``module.Class: message``, bounded, for logs, readiness and dead letters."""
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return f"{module}{kind.__qualname__}: {exc}"[:limit]
