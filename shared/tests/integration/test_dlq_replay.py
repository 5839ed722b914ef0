"""``opsmesh dlq list|replay`` against a real broker: dead letters go back to their source
topic with their original key, value and headers, only when asked to."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import header, read_all

from opsmesh.cli.main import cli
from opsmesh.clock import SystemClock
from opsmesh.kafka import DeadLetterPublisher, DeadLetterReason, EventProducer, RawRecord
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


def test_replay_sends_dead_letters_back_only_with_apply(infra: Endpoints, unique: str) -> None:
    source = Topic(f"test.dlq-replay.{unique}", 1, "test")

    async def dead_letter() -> None:
        connection = {"bootstrap_servers": infra.kafka_bootstrap}
        await ensure_topics(connection, [source, DLQ])
        producer = EventProducer(connection, source="/tests/dlq")
        await producer.start()
        try:
            publisher = DeadLetterPublisher(
                producer, service="tests", clock=SystemClock(), registry=CollectorRegistry()
            )
            for i, reason in enumerate(
                [DeadLetterReason.INVALID_JSON, DeadLetterReason.DELIVERY_FAILED]
            ):
                raw = RawRecord(
                    source.name, 0, i, f"k{i}".encode(), f"v{i}".encode(), (("origin", b"app"),), 0
                )
                await publisher.send(raw, reason, "boom")
            # Decompressed past every limit: only a prefix of it fits a dead letter.
            huge = RawRecord(source.name, 0, 2, b"k2", b"x" * 3_000_000, (), 0)
            await publisher.send(huge, DeadLetterReason.TOO_LARGE, "3000000 bytes > limit")
            await publisher.flush()
        finally:
            await producer.stop()

    asyncio.run(dead_letter())
    runner = CliRunner()
    env = {"OPSMESH_KAFKA_BOOTSTRAP": infra.kafka_bootstrap}

    listed = runner.invoke(cli, ["dlq", "list", "--topic", source.name], env=env)
    assert listed.exit_code == 0, listed.output
    assert "3 dead letter(s)" in listed.output
    assert "invalid_json" in listed.output

    dry = runner.invoke(
        cli, ["dlq", "replay", "--topic", source.name, "--reason", "delivery_failed"], env=env
    )
    assert "would replay 1 dead letter(s)" in dry.output
    assert asyncio.run(read_all(infra.kafka_bootstrap, source.name)) == []

    done = runner.invoke(
        cli,
        ["dlq", "replay", "--topic", source.name, "--reason", "delivery_failed", "--apply"],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "replayed 1 dead letter(s)" in done.output
    (record,) = asyncio.run(read_all(infra.kafka_bootstrap, source.name))
    assert (record.key, record.value) == (b"k1", b"v1")
    assert header(record, "origin") == b"app"
    assert header(record, "dlq_reason") is None, "the dead-letter headers are dropped"
    assert header(record, "dlq_replayed_from") is not None

    truncated = runner.invoke(
        cli,
        ["dlq", "replay", "--topic", source.name, "--reason", "too_large", "--apply"],
        env=env,
    )
    assert truncated.exit_code == 0, truncated.output
    assert "skipping 1 dead letter(s) whose value was truncated" in truncated.output
    assert "replayed 0 dead letter(s)" in truncated.output
    assert len(asyncio.run(read_all(infra.kafka_bootstrap, source.name))) == 1, "no prefix sent"
