"""Webhook bodies, field by field, against the ones Debian's Alertmanager (0.25) sends.

The same alert JSON is posted to a real Alertmanager and run through opsmesh's own path:
the alert-engine's API decoding and defaults (``decode_alerts``, ``from_posted``), its
alert book, routing, grouping and flush decision (``Engine``), the notification it
publishes (``notification``), then the notifier's per-integration narrowing
(``for_integration``) and its ``WebhookChannel`` posting to a local sink. Every field
Alertmanager writes must be equal, alerts in the same order; the only differences allowed
are the ones docs/alertmanager-compat.md lists, each asserted here by name:

- opsmesh writes ``notification_reason`` and ``routeLabels`` (Alertmanager 0.32 and 0.34
  fields, absent from 0.25) and its own ``notificationReason`` and ``idempotencyKey``;
- times are kept to the microsecond: a time posted with nanoseconds comes back rounded.

Each scenario is one receiver (routed by the label ``case``) of one Alertmanager run, so
the whole comparison costs one Alertmanager start, one ``group_wait`` and one
``group_interval`` (about 6 s).
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import yaml

from alert_engine.api.shapes import decode_alerts
from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import from_posted
from alert_engine.core.amconfig import parse_config
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine
from alert_engine.core.silences import Silences
from alert_engine.pipeline.convert import notification
from notifier.channels.http_client import http_options
from notifier.channels.safe_http import safe_session
from notifier.channels.webhook import WebhookChannel
from notifier.core.send_resolved import for_integration
from notifier.core.targets import TargetPolicy
from notifier.receivers.loading import parse_receivers
from opsmesh.clock import SystemClock
from opsmesh.events.notifications import NotificationRequested

from .conftest import Alertmanager, Sink, http_sink

# Alertmanager 0.32 (notification_reason) and 0.34 (routeLabels) write these; 0.25 not.
NEWER_ALERTMANAGER = {"notification_reason", "routeLabels"}
OPSMESH_ADDITIONS = {"notificationReason", "idempotencyKey"}
LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])
PROMETHEUS = "http://prometheus.example:9090/graph?g0.expr=up%3D%3D0&g0.tab=1"
# Longer than it takes to post and insert a scenario's alerts (none older than 2 s).
GROUP_WAIT = "4s"
UNICODE_RECEIVER = "équipe.db+(1)"  # non-ASCII, and regexp metacharacters for QuoteMeta


def _time(epoch: float, digits: str = "") -> str:
    """RFC 3339 in UTC; ``digits``: a fraction to write verbatim (up to nanoseconds)."""
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def _alert(
    case: str,
    labels: dict[str, str],
    starts: str,
    ends: str | None = None,
    *,
    annotations: dict[str, str] | None = None,
    url: str = "",
) -> dict[str, Any]:
    posted: dict[str, Any] = {
        "labels": {"alertname": "DiskFull", "case": case, **labels},
        "startsAt": starts,
    }
    if ends is not None:
        posted["endsAt"] = ends
    if annotations is not None:
        posted["annotations"] = annotations
    if url:
        posted["generatorURL"] = url
    return posted


@dataclass(frozen=True)
class Scenario:
    name: str  # the receiver, and the ``case`` label that routes to it
    steps: list[list[dict[str, Any]]]  # posted in turn, each answered by one webhook
    webhook: dict[str, Any] = field(default_factory=dict)  # webhook_configs extras


def _scenarios(now: float) -> list[Scenario]:
    """``now``: the whole second after the test starts. Every alert of a first post
    started less than ``GROUP_WAIT`` before it is posted (see ``alertmanager_factory``)."""
    ago = lambda s: _time(now - s)  # noqa: E731
    return [
        Scenario(
            "firing",
            [
                [
                    # A stored end time ahead: Alertmanager shows the zero endsAt.
                    _alert(
                        "firing",
                        {"instance": "a:9100", "job": "node", "severity": "page"},
                        ago(2),
                        _time(now + 3600),
                        annotations={
                            "summary": "disk a",
                            "runbook": "https://runbooks.example/disk",
                        },
                        url=PROMETHEUS,
                    ),
                    _alert(
                        "firing",
                        {"instance": "b:9100", "job": "node", "severity": "page"},
                        ago(1),
                        None,
                        annotations={
                            "summary": "disk b",
                            "runbook": "https://runbooks.example/disk",
                        },
                        url=PROMETHEUS,
                    ),
                ]
            ],
        ),
        Scenario(
            "order",
            [
                [  # posted in the reverse of Alertmanager's order (job, instance, label set)
                    _alert("order", {"zone": "b"}, ago(1)),
                    _alert("order", {}, ago(1)),
                    _alert("order", {"instance": "a:1"}, ago(1)),
                    _alert("order", {"job": "node", "instance": "c:1"}, ago(1)),
                    _alert("order", {"job": "node", "instance": "b:1"}, ago(1)),
                    _alert("order", {"job": "node"}, ago(1)),
                    _alert("order", {"job": "api", "instance": "z:1"}, ago(1)),
                ]
            ],
        ),
        Scenario(
            "fractions",
            [
                [
                    _alert("fractions", {"instance": str(i)}, _time(now - 2, digits))
                    for i, digits in enumerate(
                        ["5", "25", "125", "000001", "123456", "", "500000", "100"]
                    )
                ]
            ],
        ),
        Scenario(
            "mixed",
            [
                [
                    _alert(
                        "mixed", {"instance": "a"}, ago(2), None, annotations={"summary": "same"}
                    ),
                    _alert(
                        "mixed",
                        {"instance": "b"},
                        _time(now - 2, "75"),
                        _time(now - 1, "5"),
                        annotations={"summary": "same", "extra": "only on b"},
                    ),
                ]
            ],
        ),
        Scenario(
            "resolved",
            [
                [
                    _alert(
                        "resolved", {"instance": "a"}, ago(2), None, annotations={"summary": "a"}
                    ),
                    _alert(
                        "resolved",
                        {"instance": "b"},
                        ago(1),
                        _time(now + 600),
                        annotations={"summary": "b"},
                    ),
                ],
                [  # both resolve: "all alerts resolved", with their end times
                    _alert(
                        "resolved", {"instance": "a"}, ago(2), ago(1), annotations={"summary": "a"}
                    ),
                    _alert(
                        "resolved",
                        {"instance": "b"},
                        ago(1),
                        _time(now - 1, "25"),
                        annotations={"summary": "b"},
                    ),
                ],
            ],
        ),
        Scenario(
            "quiet",  # send_resolved off: the resolved alert is stripped
            [
                [
                    _alert(
                        "quiet",
                        {"instance": "a", "tier": "1"},
                        ago(1),
                        None,
                        annotations={"s": "a"},
                    ),
                    _alert(
                        "quiet",
                        {"instance": "b", "tier": "1"},
                        ago(2),
                        ago(1),
                        annotations={"s": "b"},
                    ),
                    _alert(
                        "quiet",
                        {"instance": "c", "tier": "1"},
                        ago(2),
                        None,
                        annotations={"s": "a"},
                    ),
                ]
            ],
            {"send_resolved": False},
        ),
        Scenario(
            "truncated",  # max_alerts 2: the first two (both resolved) are sent
            [
                [
                    _alert("truncated", {"job": "a", "instance": "1"}, ago(2), ago(1)),
                    _alert("truncated", {"job": "a", "instance": "2"}, ago(2), ago(1)),
                    _alert("truncated", {"job": "b", "instance": "3"}, ago(1)),
                    _alert("truncated", {"job": "b", "instance": "4"}, ago(1)),
                ]
            ],
            {"max_alerts": 2},
        ),
        Scenario(
            UNICODE_RECEIVER,
            [
                [
                    _alert(
                        UNICODE_RECEIVER,
                        {"instance": "hôte-1", "team": "données 🚒", "quote": 'say "hi" \\ <b>'},
                        ago(2),
                        None,
                        annotations={
                            "summary": "Disque plein à 95 % — 🔥 <script>&amp;",
                            "d": "ディスク",
                        },
                        url="http://prometheus.example/graph?g0.expr=é",
                    ),
                    _alert(UNICODE_RECEIVER, {"instance": "hôte-2", "team": "données 🚒"}, ago(1)),
                ]
            ],
        ),
        Scenario(
            "nanos",  # Go keeps nanoseconds; opsmesh rounds to the microsecond
            [
                [
                    _alert("nanos", {"instance": "a"}, _time(now - 2, "123456789")),
                    _alert("nanos", {"instance": "b"}, _time(now - 2, "000000499")),
                    _alert(
                        "nanos",
                        {"instance": "c"},
                        _time(now - 2, "1000005"),
                        _time(now - 1, "987654321"),
                    ),
                ]
            ],
        ),
    ]


def scenarios_names_and_hooks() -> list[Scenario]:
    """The receivers Alertmanager is started with (the alerts' times do not matter)."""
    return _scenarios(0.0)


class OpsmeshSide:
    """The alert-engine's and the notifier's code, fed what Alertmanager is fed."""

    def __init__(self, config_text: str, external_url: str, sink_url: str) -> None:
        self.config = parse_config(config_text)
        self.engine = Engine(self.config, ActiveAlerts(), Silences())
        self.receivers = parse_receivers(yaml.safe_load(config_text))
        self.external_url = external_url
        self.sink_url = sink_url
        self.log: dict[tuple[str, str], LogEntry] = {}

    def post(self, alerts: list[dict[str, Any]], now: float) -> None:
        for item in decode_alerts(json.dumps(alerts).encode()):
            _, merged = self.engine.alerts.put(
                from_posted(item, now, self.config.resolve_timeout_s), now
            )
            assert merged is not None
            self.engine.apply(merged, now)

    def flush(self, now: float) -> list[NotificationRequested]:
        """Every group, at its due time or ``now`` if later: the notifications decided."""
        at = max([now, *(g.next_flush_at for g in self.engine.dispatcher.groups())])
        sent = []
        for plan in self.engine.plan(at, self.log):
            if plan.reason is not None:
                event = notification(plan, at, self.external_url).event
                assert isinstance(event, NotificationRequested)
                sent.append(event)
                assert plan.entry is not None
                self.log[(plan.group.key, plan.receiver)] = plan.entry
            self.engine.done(plan, at)
        return sent

    async def deliver(self, events: list[NotificationRequested]) -> None:
        async with safe_session(LOOPBACK, timeout_s=5.0) as session:
            for event in events:
                receiver = self.receivers[event.receiver]
                case = urllib.parse.quote(event.receiver, safe="")
                for index, hook in enumerate(receiver.webhook_configs):
                    request = for_integration(event, hook.send_resolved)
                    if request is None:
                        continue
                    channel = WebhookChannel(
                        name=f"webhook-{index}",
                        url=f"{self.sink_url}/hook/{case}",
                        secrets=[],
                        session=session,
                        policy=LOOPBACK,
                        clock=SystemClock(),
                        http=http_options(hook.http_config),
                        max_alerts=hook.max_alerts,
                    )
                    result = await channel.send(request)
                    assert result.ok, result.error


def _to_microseconds(text: str) -> str:
    """A Go RFC3339Nano UTC time as opsmesh keeps it: the fraction rounded half up to
    microseconds (how the API's decoder rounds), trailing zeros trimmed."""
    if "." not in text:
        return text
    head, fraction = text.removesuffix("Z").split(".")
    rounded = Decimal("0." + fraction).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert rounded < 1, "the test's times never round up into the next second"
    digits = f"{rounded:f}"[2:].rstrip("0")
    return f"{head}.{digits}Z" if digits else f"{head}Z"


def _assert_same(case: str, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    assert set(ours) - set(theirs) == NEWER_ALERTMANAGER | OPSMESH_ADDITIONS, case
    assert set(theirs) <= set(ours), case
    for name, value in theirs.items():
        if name != "alerts":
            assert ours[name] == value, f"{case}: {name}"
    assert len(ours["alerts"]) == len(theirs["alerts"]), f"{case}: alerts"
    for index, (their, our) in enumerate(zip(theirs["alerts"], ours["alerts"], strict=True)):
        assert set(our) == set(their), f"{case}: alerts[{index}] fields"
        for name, value in their.items():
            expected = _to_microseconds(value) if name in ("startsAt", "endsAt") else value
            assert our[name] == expected, f"{case}: alerts[{index}].{name}"


@pytest.fixture
def opsmesh_sink() -> Iterator[tuple[Sink, str]]:
    sink = Sink()
    server, port = http_sink(sink)
    yield sink, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


async def test_webhook_bodies_equal_alertmanagers_field_by_field(
    alertmanager_factory: Callable[..., Alertmanager],
    opsmesh_sink: tuple[Sink, str],
) -> None:
    ours_sink, ours_url = opsmesh_sink
    am = alertmanager_factory(
        [
            {"name": s.name, "webhook_configs": [{"url": "http://placeholder", **s.webhook}]}
            for s in scenarios_names_and_hooks()
        ],
        {},
        group_wait=GROUP_WAIT,
    )
    scenarios = _scenarios(float(math.ceil(time.time())))
    ours = OpsmeshSide(am.config, am.external_url, ours_url)
    steps = max(len(s.steps) for s in scenarios)
    for step in range(steps):
        posted = [a for s in scenarios if step < len(s.steps) for a in s.steps[step]]
        am.post(posted)
        ours.post(posted, time.time())
        am.wait([s.name for s in scenarios if step < len(s.steps)], step + 1)
        await ours.deliver(ours.flush(time.time()))

    for scenario in scenarios:
        theirs_bodies = am.sink.bodies[scenario.name][: len(scenario.steps)]
        ours_bodies = ours_sink.bodies[scenario.name]
        assert len(ours_bodies) == len(scenario.steps), scenario.name
        for theirs, our in zip(theirs_bodies, ours_bodies, strict=True):
            _assert_same(scenario.name, theirs, our)

    # The rules the scenarios are there for, spelled out so a failure names them.
    body = {s.name: am.sink.bodies[s.name][len(s.steps) - 1] for s in scenarios}
    assert [
        (a["labels"].get("job"), a["labels"].get("instance"), a["labels"].get("zone"))
        for a in body["order"]["alerts"]
    ] == [
        ("api", "z:1", None),
        ("node", "b:1", None),
        ("node", "c:1", None),
        ("node", None, None),
        (None, "a:1", None),
        (None, None, None),
        (None, None, "b"),
    ]
    assert body["firing"]["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    # Go's RFC3339Nano: trailing zeros trimmed, no fraction when it is zero.
    assert [a["startsAt"][19:] for a in body["fractions"]["alerts"]] == [
        ".5Z",
        ".25Z",
        ".125Z",
        ".000001Z",
        ".123456Z",
        "Z",
        ".5Z",
        ".1Z",
    ]
    assert body["resolved"]["status"] == "resolved"
    assert [a["status"] for a in body["resolved"]["alerts"]] == ["resolved", "resolved"]
    assert [a["labels"]["instance"] for a in body["quiet"]["alerts"]] == ["a", "c"]
    assert body["quiet"]["commonAnnotations"] == {"s": "a"}
    assert body["truncated"]["truncatedAlerts"] == 2
    assert body["truncated"]["status"] == "resolved"
    assert body[UNICODE_RECEIVER]["receiver"] == "équipe\\.db\\+\\(1\\)"
    assert [a["startsAt"].rsplit(".", 1)[1] for a in body["nanos"]["alerts"]] == [
        "123456789Z",
        "000000499Z",
        "1000005Z",
    ]
