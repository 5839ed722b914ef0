"""The failure classifier: what may pass by itself is transient, everything else is not."""

from __future__ import annotations

import psycopg
import psycopg.errors
import psycopg_pool
import pytest
import redis.exceptions
from aiokafka import errors as kafka_errors

from opsmesh.kafka.failures import FailureClass, classifier_for, classify, describe

TRANSIENT = [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(),
    TimeoutError(),  # asyncio.TimeoutError is this one
    OSError(113, "No route to host"),
    psycopg.OperationalError("connection failed: server closed the connection"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.errors.SerializationFailure("could not serialize access"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
    psycopg.InterfaceError("the connection is closed"),
    psycopg_pool.PoolTimeout("couldn't get a connection after 30.00 sec"),
    redis.exceptions.ConnectionError("Error 111 connecting"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    kafka_errors.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"),
    kafka_errors.KafkaTimeoutError(),
    kafka_errors.RequestTimedOutError(),
    kafka_errors.NotLeaderForPartitionError(),
    kafka_errors.NodeNotReadyError(),
    kafka_errors.LeaderNotAvailableError(),
]

DETERMINISTIC = [
    psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    psycopg.errors.CharacterNotInRepertoire('invalid byte sequence for encoding "UTF8": 0x00'),
    psycopg.errors.UntranslatableCharacter("unsupported Unicode escape sequence"),
    psycopg.errors.NumericValueOutOfRange("value out of range"),
    psycopg.errors.DatetimeFieldOverflow("date/time field value out of range"),
    psycopg.IntegrityError("duplicate key value violates unique constraint"),
    psycopg.errors.UniqueViolation("duplicate key value"),
    psycopg.ProgrammingError("can't adapt type 'dict'"),
    psycopg.errors.UndefinedTable('relation "x" does not exist'),
    # Class 54 is an OperationalError in psycopg, but the data causes it.
    psycopg.errors.ProgramLimitExceeded("index row size 3000 exceeds btree maximum 2704"),
    psycopg.errors.StatementTooComplex("stack depth limit exceeded"),
    ValueError("year 10000 is out of range"),
    KeyError("receiver"),
    OverflowError("cannot convert float infinity to integer"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    RecursionError("maximum recursion depth exceeded"),
    kafka_errors.MessageSizeTooLargeError(),
    kafka_errors.RecordTooLargeError(),
    redis.exceptions.ResponseError("WRONGTYPE Operation against a key"),
    RuntimeError("a bug"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_outages_and_timeouts_are_transient(exc: BaseException) -> None:
    assert classify(exc) is FailureClass.TRANSIENT


@pytest.mark.parametrize("exc", DETERMINISTIC, ids=lambda e: type(e).__name__)
def test_everything_else_is_deterministic(exc: BaseException) -> None:
    assert classify(exc) is FailureClass.DETERMINISTIC


def wrapped(cause: BaseException) -> RuntimeError:
    outer = RuntimeError("store failed")
    outer.__cause__ = cause  # what ``raise RuntimeError(...) from cause`` sets
    return outer


def test_a_wrapped_transient_cause_is_transient_and_a_wrapped_bug_is_not() -> None:
    assert classify(wrapped(ConnectionResetError("reset by peer"))) is FailureClass.TRANSIENT
    assert classify(wrapped(KeyError("x"))) is FailureClass.DETERMINISTIC


def test_an_exception_group_is_transient_when_any_member_is() -> None:
    assert (
        classify(ExceptionGroup("tasks", [ValueError("bad"), TimeoutError()]))
        is FailureClass.TRANSIENT
    )
    assert (
        classify(ExceptionGroup("tasks", [ValueError("bad"), KeyError("k")]))
        is FailureClass.DETERMINISTIC
    )


def test_a_cause_chain_is_followed_only_so_far() -> None:
    exc: BaseException = ConnectionResetError()
    for _ in range(20):
        exc = wrapped(exc)
    assert classify(exc) is FailureClass.DETERMINISTIC


class OwnClasses:
    def classify_failure(self, exc: BaseException) -> FailureClass | None:
        if isinstance(exc, LookupError):
            return FailureClass.TRANSIENT  # e.g. a cache not warmed yet
        return None


def test_a_handler_may_classify_its_own_failures_and_defer_the_rest() -> None:
    own = classifier_for(OwnClasses())
    assert own(KeyError("not loaded yet")) is FailureClass.TRANSIENT
    assert own(ValueError("bad")) is FailureClass.DETERMINISTIC
    assert own(TimeoutError()) is FailureClass.TRANSIENT
    assert classifier_for(object()) is classify


def test_describe_names_the_class_and_is_bounded() -> None:
    assert describe(psycopg.DataError("NUL")) == "psycopg.DataError: NUL"
    assert describe(KeyError("k")) == "KeyError: 'k'"
    assert len(describe(ValueError("x" * 10_000), 100)) == 100
