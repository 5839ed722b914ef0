"""Repeated log records are throttled with backoff and the count of those suppressed is
carried by the next one through (a broker outage logs every failed reconnect)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from opsmesh.logging import SUPPRESSED_FIELD, RepeatThrottle, configure_logging, get_logger
from opsmesh_dev.testing.clock import FakeClock


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def collected(clock: FakeClock) -> Iterator[tuple[logging.Logger, Collect]]:
    logger = logging.getLogger("tests.throttle.aiokafka.conn")
    handler = Collect()
    handler.addFilter(RepeatThrottle(initial_s=1.0, max_s=8.0, monotonic=clock.monotonic))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def reconnect_failed(logger: logging.Logger, node: int) -> None:
    logger.error("Unable connect to node with id %s: %s", node, "Connect call failed")


def test_a_flood_of_one_template_passes_with_doubling_intervals(
    collected: tuple[logging.Logger, Collect], clock: FakeClock
) -> None:
    logger, handler = collected
    passed_at = []
    for tick in range(313):  # 39 s of a failed reconnect every 125 ms, nodes alternating
        before = len(handler.records)
        reconnect_failed(logger, tick % 3)
        if len(handler.records) > before:
            passed_at.append(clock.monotonic())
        clock.advance(0.125)
    # Through at 0, then 1 s, 2 s, 4 s, 8 s (the cap) apart.
    assert passed_at == [0.0, 1.0, 3.0, 7.0, 15.0, 23.0, 31.0, 39.0]
    counts = [getattr(r, SUPPRESSED_FIELD, 0) for r in handler.records]
    assert counts == [0, 7, 15, 31, 63, 63, 63, 63]
    assert sum(counts) + len(counts) == 313, "every record is either shown or counted"


def test_templates_are_throttled_separately_and_the_arguments_do_not_matter(
    collected: tuple[logging.Logger, Collect],
) -> None:
    logger, handler = collected
    for node in range(5):
        reconnect_failed(logger, node)
        logger.error("Unable to update metadata from %s", node)
    assert [r.getMessage() for r in handler.records] == [
        "Unable connect to node with id 0: Connect call failed",
        "Unable to update metadata from 0",
    ]


def test_a_template_quiet_for_long_starts_over_and_reports_what_it_held_back(
    collected: tuple[logging.Logger, Collect], clock: FakeClock
) -> None:
    logger, handler = collected
    for _ in range(5):
        reconnect_failed(logger, 1)
    clock.advance(16.0)  # reset_after_s defaults to twice max_s
    reconnect_failed(logger, 1)
    reconnect_failed(logger, 1)
    assert len(handler.records) == 2
    assert getattr(handler.records[1], SUPPRESSED_FIELD) == 4
    clock.advance(1.0)
    reconnect_failed(logger, 1)
    assert len(handler.records) == 3, "after the reset the first interval is short again"


def test_the_number_of_templates_remembered_is_bounded(clock: FakeClock) -> None:
    throttle = RepeatThrottle(max_keys=100, monotonic=clock.monotonic)
    for i in range(1000):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, f"distinct {i}", None, None)
        assert throttle.filter(record)
    assert len(throttle._seen) <= 100


@pytest.fixture
def configured() -> Iterator[tuple[RepeatThrottle, io.StringIO]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("tests")
    # A logger cached now would keep these processors for the rest of the session, and
    # structlog.testing.capture_logs in later tests would not see its events.
    structlog.configure(cache_logger_on_first_use=False)
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    (throttle,) = [f for f in handler.filters if isinstance(f, RepeatThrottle)]
    try:
        yield throttle, out
    finally:
        root.handlers[:], root.level = saved
        structlog.reset_defaults()
        for noisy in ("aiokafka", "aiohttp.access", "psycopg.pool"):
            logging.getLogger(noisy).setLevel(logging.NOTSET)


def test_the_service_logger_renders_the_suppressed_count_as_a_json_field(
    configured: tuple[RepeatThrottle, io.StringIO], clock: FakeClock
) -> None:
    throttle, out = configured
    throttle._monotonic = clock.monotonic
    foreign = logging.getLogger("aiokafka.conn")
    ours = get_logger("tests.ours")
    for _ in range(3):
        reconnect_failed(foreign, 1)
        ours.warning("handler failed again; retrying with backoff", records=0)
    clock.advance(1.5)
    reconnect_failed(foreign, 1)
    ours.warning("handler failed again; retrying with backoff", records=0)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line.get(SUPPRESSED_FIELD)) for line in lines] == [
        ("aiokafka.conn", None),
        ("tests.ours", None),
        ("aiokafka.conn", 2),
        ("tests.ours", 2),
    ]
    assert lines[2]["event"] == "Unable connect to node with id 1: Connect call failed"
