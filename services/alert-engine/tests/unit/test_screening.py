"""Consumed records that could never be stored are dead-lettered with their reason, and
the rest of their batch goes on (the stall of issue 10 item 1, for records produced by
an older version or by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiokafka.structs import ConsumerRecord

from alert_engine.pipeline.dispatch_stage import DispatchStage
from alert_engine.pipeline.screening import Unacceptable, check_routed, check_signal, screen
from opsmesh.events import AlertsRouted, RoutedAlert, SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.codec import encode
from opsmesh.kafka.consumer import Received
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.topics import ALERT_GROUPS

T0 = 1_700_000_000.0


def routed(**changes: Any) -> RoutedAlert:
    fields: dict[str, Any] = {
        "route_id": "0",
        "group_key": '{}:{alertname="X"}',
        "fingerprint": "f" * 16,
        "labels": {"alertname": "X"},
        "starts_at": T0,
        "ends_at": T0 + 300,
        "updated_at": T0,
    }
    fields.update(changes)
    return RoutedAlert(**fields)


def signal(**changes: Any) -> SignalObserved:
    fields: dict[str, Any] = {
        "source": SignalSource.METRICS,
        "kind": SignalKind.ROLLUP,
        "name": "cpu",
        "subject": "host-1",
        "labels": {"host": "h1"},
        "value": 1.0,
        "observed_at": T0,
    }
    fields.update(changes)
    return SignalObserved(**fields)


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        (routed(labels={"alertname": "X", "team": "db\x00"}), r"alerts\[0\]\.labels\.team: .*NUL"),
        (routed(labels={"a\x00": "x"}), r"alerts\[0\]\.labels name 'a\\x00': .*NUL"),
        (routed(annotations={"summary": "\x00"}), r"annotations\.summary: .*NUL"),
        (routed(generator_url="http://x/\x00"), r"generator_url: .*NUL"),
        (routed(group_key="k\x00"), r"group_key: .*NUL"),
        (routed(ends_at=253_402_387_139.0), r"alerts\[0\]\.ends_at: .*outside the accepted range"),
        (routed(updated_at=1e300), "updated_at"),
        (routed(starts_at=float("inf")), "starts_at"),
        (routed(source="martian"), r"source: unknown source 'martian'"),
    ],
)
def test_routed_alerts_that_could_never_be_stored(alert: RoutedAlert, message: str) -> None:
    with pytest.raises(Unacceptable, match=message):
        check_routed(AlertsRouted(alerts=[alert]))


def test_good_routed_alerts_pass() -> None:
    check_routed(AlertsRouted(alerts=[routed(), routed(labels={"é": "日本\n"}, source="rule")]))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (signal(labels={"host": "h\x00"}), r"labels\.host: .*NUL"),
        (signal(subject="\x00"), "subject"),
        (signal(detail="\x00"), "detail"),
        (signal(stats={"m\x00": 1.0}), "stats name"),
        (signal(observed_at=1e12), r"signal\.observed_at: .*outside"),
        (signal(window_end=1e15), "window_end"),
    ],
)
def test_signals_that_could_never_be_stored(event: SignalObserved, message: str) -> None:
    with pytest.raises(Unacceptable, match=message):
        check_signal(event)
    check_signal(signal())


def _received(event: AlertsRouted, offset: int) -> Received[AlertsRouted]:
    value = encode(event)
    # What the consumer hands over: decoded from the bytes on the wire.
    decoded = msgspec.json.decode(value, type=AlertsRouted)
    message = ConsumerRecord(
        topic=ALERT_GROUPS.name,
        partition=3,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=[],
    )
    return Received(decoded, message)


def test_screen_splits_a_batch() -> None:
    batch = [
        _received(AlertsRouted(alerts=[routed()]), 10),
        _received(AlertsRouted(alerts=[routed(labels={"a": "\x00"})]), 11),
        _received(AlertsRouted(alerts=[routed(fingerprint="e" * 16)]), 12),
    ]
    good, rejected = screen(batch, check_routed)
    assert [r.offset for r in good] == [10, 12]
    (bad,) = rejected
    assert bad.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert (bad.raw.topic, bad.raw.partition, bad.raw.offset) == (ALERT_GROUPS.name, 3, 11)
    assert bad.raw.value == batch[1].message.value
    assert "alerts[0].labels.a" in bad.error


@dataclass
class FakeState:
    """What DispatchStage uses of EngineState: ``routed`` persists (PostgreSQL), then
    applies."""

    persisted: list[bytes] = field(default_factory=list)
    applied: list[AlertsRouted] = field(default_factory=list)

    async def routed(
        self,
        records: Sequence[bytes],
        batches: Sequence[AlertsRouted],
        sent_at: Sequence[float] = (),
    ) -> None:
        for record in records:
            # As PostgreSQL's jsonb: a NUL escape fails the whole statement.
            if b"\\u0000" in record:
                raise ValueError("unsupported Unicode escape sequence")
        self.persisted.extend(records)
        self.applied.extend(batches)


async def test_dispatch_dead_letters_the_poison_record_and_keeps_the_batch() -> None:
    state = FakeState()
    stage = DispatchStage(state)  # type: ignore[arg-type]
    batch = [
        _received(AlertsRouted(alerts=[routed()]), 1),
        _received(AlertsRouted(alerts=[routed(labels={"alertname": "\x00"})]), 2),
        _received(AlertsRouted(alerts=[routed(source="martian")]), 3),
        _received(AlertsRouted(alerts=[routed(fingerprint="e" * 16)]), 4),
    ]
    result = await stage.handle(batch)
    assert [r.raw.offset for r in result.rejected] == [2, 3]
    assert state.persisted == [batch[0].message.value, batch[3].message.value]
    assert [a.alerts[0].fingerprint for a in state.applied] == ["f" * 16, "e" * 16]
