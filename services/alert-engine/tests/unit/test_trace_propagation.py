"""An alert carries the trace of the signal (or POST) that fired it: evaluation keeps it,
merges keep the occurrence's, routing records and notifications continue it."""

from __future__ import annotations

import textwrap
from dataclasses import replace

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert, accept
from alert_engine.core.amconfig import parse_config
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.flush import plan_flush
from alert_engine.core.grouping import Dispatcher, GroupedAlert, Route
from alert_engine.core.rules import Comparison, Rule
from alert_engine.core.silences import Silences
from alert_engine.pipeline.convert import notification, state_changed
from alert_engine.pipeline.route_out import RouteOut
from alert_engine.pipeline.state.ingest import evaluate, valid_trace
from opsmesh.events import AlertsRouted, AlertState
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.codec import decode
from opsmesh.kafka.handler import Received
from opsmesh.labels import fingerprint
from opsmesh.tracing.context import new_trace

T0 = 1_700_000_000.0
A, B, C = (new_trace() for _ in range(3))


def signal(value: float) -> SignalObserved:
    return SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name="cpu",
        subject="cpu",
        labels={"host": "a"},
        value=value,
        observed_at=T0,
    )


def rule(for_s: float = 0.0) -> Rule:
    return Rule(name="CpuHot", signal="cpu", op=Comparison.GT, threshold=0.9, for_s=for_s)


def test_an_alert_keeps_the_trace_of_the_signal_that_fired_it() -> None:
    evaluator = Evaluator([rule()])
    [fired] = evaluator.observe(signal(1.0), T0, A.header())
    assert fired.alert.trace == A.header()
    assert evaluator.observe(signal(1.0), T0 + 1, B.header()) == []  # still firing
    [resolved] = evaluator.observe(signal(0.1), T0 + 2, C.header())
    assert resolved.alert.state is AlertState.RESOLVED
    assert resolved.alert.trace == A.header(), "the occurrence's trace, not the resolver's"


def test_a_pending_alert_fires_with_the_trace_of_the_signal_that_fired_it() -> None:
    evaluator = Evaluator([rule(for_s=10)])
    [pending] = evaluator.observe(signal(1.0), T0, A.header())
    assert (pending.alert.state, pending.alert.trace) == (AlertState.PENDING, A.header())
    [fired] = evaluator.observe(signal(1.0), T0 + 11, B.header())
    assert (fired.alert.state, fired.alert.trace) == (AlertState.FIRING, B.header())


def test_reports_of_a_firing_alert_keep_its_trace_and_a_new_occurrence_gets_its_own() -> None:
    labels = {"alertname": "Disk"}
    first = StoredAlert(fingerprint(labels), labels, {}, T0, T0 + 300, T0, trace=A.header())
    again = replace(first, ends_at=T0 + 360, updated_at=T0 + 60, trace=B.header())
    assert accept(first, again, T0 + 60).trace == A.header()
    later = replace(first, starts_at=T0 + 900, ends_at=T0 + 1200, updated_at=T0 + 900)
    assert accept(first, replace(later, trace=C.header()), T0 + 900).trace == C.header()


def test_a_state_change_continues_its_cause() -> None:
    evaluator = Evaluator([rule()])
    [fired] = evaluator.observe(signal(1.0), T0, A.header())
    assert state_changed(fired, A.header()).trace == A
    assert state_changed(fired, "not a traceparent").trace is None  # the producer starts one


def test_routing_records_carry_each_alerts_trace_and_continue_the_newest() -> None:
    config = parse_config(
        textwrap.dedent(
            """\
            route: {receiver: default, group_by: ['...']}
            receivers: [{name: default}]
            """
        )
    )
    engine = Engine(config, ActiveAlerts(), Silences())
    alerts = [
        StoredAlert(fingerprint(labels), labels, {}, T0, None, T0 + i, trace=t.header())
        for i, (labels, t) in enumerate(
            [({"alertname": "X", "n": str(n)}, t) for n, t in enumerate((A, B, C))]
        )
    ]
    # One partition for all: the record's header is the newest alert's trace.
    records = RouteOut("proc", partitions=1).records(engine, [(a, None, None) for a in alerts])
    [record] = records
    assert record.encoded is not None
    routed = decode(AlertsRouted, record.encoded)
    assert [a.traceparent for a in routed.alerts] == [A.header(), B.header(), C.header()]
    assert record.trace == C
    assert set(record.links) == {A, B}


def test_a_notification_continues_its_newest_alert_with_the_others_as_links() -> None:
    route = Route(receiver="default", group_by=("alertname",), group_wait_s=0)
    dispatcher = Dispatcher(route)
    for i, t in enumerate((A, B, C)):
        labels = {"alertname": "X", "n": str(i)}
        alert = GroupedAlert(
            fingerprint(labels), labels, {}, T0 + i, None, AlertStatus.FIRING, trace=t.header()
        )
        [group] = dispatcher.insert(alert, T0 + i)
    plan = plan_flush(group, None, T0 + 5)
    out = notification(plan, T0 + 5, "http://engine")
    assert out.trace == C, "the newest alert (by starts_at) is the parent"
    assert set(out.links) == {A, B}


class _Message:
    def __init__(self, traceparent: bytes | None) -> None:
        self.headers = [] if traceparent is None else [("traceparent", traceparent)]


def test_evaluation_keeps_a_signals_header_and_drops_what_storage_would_refuse() -> None:
    evaluator = Evaluator([rule()])
    good = Received(signal(1.0), _Message(A.header().encode()))
    transitions, causes, _, _ = evaluate(evaluator, [good], T0)
    assert causes == [A.header()]
    assert transitions[0].alert.trace == A.header()
    hostile = A.header().encode()[:-2] + b"\x00\x00"  # 55 bytes, with NULs
    other = Evaluator([rule()])
    _, causes, _, _ = evaluate(other, [Received(signal(1.0), _Message(hostile))], T0)
    assert causes == [""]
    assert valid_trace("00-" + "z" * 52) == ""
    assert valid_trace(A.header()) == A.header()
