"""Conversions between the core's values and the wire events.

Traces: a state change continues what caused it; a notification the newest of its
alerts' traces (by ``starts_at``), the others as span links (``FanIn``). A notification
lists its alerts in Alertmanager's order (``core.alert_order``)."""

from __future__ import annotations

from collections.abc import Mapping

from alert_engine.core.alert_order import alertmanager_order
from alert_engine.core.evaluation import Transition
from alert_engine.core.flush import FlushPlan
from opsmesh.events.alerts import Alert, AlertStateChanged, AlertStatus
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka.producer import Outgoing
from opsmesh.labels import common_pairs
from opsmesh.topics import ALERTS, NOTIFICATIONS
from opsmesh.tracing.context import fan_in, parse_traceparent


def state_changed(transition: Transition, trace: str = "") -> Outgoing:
    """``trace``: the traceparent of what caused the transition."""
    a = transition.alert
    event = AlertStateChanged(
        fingerprint=a.fingerprint,
        rule=a.rule,
        previous=transition.previous,
        state=a.state,
        labels=dict(a.labels),
        annotations=dict(a.annotations),
        value=a.value,
        starts_at=a.fired_at or a.active_at,
        ends_at=a.resolved_at,
        changed_at=transition.at,
    )
    return Outgoing(ALERTS, a.fingerprint, event, trace=parse_traceparent(trace))


def _plain(values: Mapping[str, str]) -> dict[str, str]:
    """The mapping itself when it is a dict already (alerts are never mutated in place):
    a flush builds one notification per due group, and copies were most of its cost."""
    return values if type(values) is dict else dict(values)


def notification(plan: FlushPlan, now: float, external_url: str) -> Outgoing:
    if plan.reason is None or plan.idempotency_key is None:
        raise ValueError("a plan without a reason sends nothing")
    ordered = alertmanager_order(plan.sent, lambda a: a.labels)
    alerts = [
        Alert(
            fingerprint=a.fingerprint,
            status=a.status_at(plan.at),
            labels=_plain(a.labels),
            annotations=_plain(a.annotations),
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            generator_url=a.generator_url,
        )
        for a in ordered
    ]
    by_start = sorted(plan.sent, key=lambda a: (a.starts_at, a.fingerprint))
    trace = fan_in(parse_traceparent(a.trace) if a.trace else None for a in by_start)
    firing = any(a.status is AlertStatus.FIRING for a in alerts)
    request = NotificationRequested(
        idempotency_key=plan.idempotency_key,
        receiver=plan.receiver,
        group_key=plan.group.key,
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        reason=plan.reason,
        group_labels=dict(plan.group.labels),
        common_labels=common_pairs([a.labels for a in alerts]),
        common_annotations=common_pairs([a.annotations for a in alerts]),
        alerts=alerts,
        external_url=external_url,
        requested_at=now,
    )
    return Outgoing(
        NOTIFICATIONS,
        f"{plan.group.key}|{plan.receiver}",
        request,
        trace=trace.parent,
        links=trace.links,
    )
