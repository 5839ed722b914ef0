"""Routing records: one per partition per ingest batch, in merge order, history once,
split only where a record would grow too large."""

from __future__ import annotations

import textwrap

import msgspec
import pytest

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import parse_config
from alert_engine.core.engine import Engine
from alert_engine.core.silences import Silences
from alert_engine.pipeline import route_out
from alert_engine.pipeline.route_out import RouteOut
from opsmesh.events import AlertsRouted, AlertState
from opsmesh.kafka.codec import decode
from opsmesh.kafka.producer import Outgoing
from opsmesh.labels import fingerprint
from opsmesh.topics import ALERT_GROUPS, partition_for

T0 = 1_700_000_000.0
CONFIG = textwrap.dedent(
    """\
    route:
      receiver: default
      group_by: [alertname, instance]
      routes:
        - receiver: audit
          matchers: ['team="db"']
          continue: true
          group_by: [team]
        - receiver: default
          matchers: ['team=~"db|web"']
    receivers: [{name: default}, {name: audit}]
    """
)


def stored(i: int, team: str = "web", summary: str = "") -> StoredAlert:
    labels = {"alertname": f"A{i % 3}", "instance": f"h{i}", "team": team}
    return StoredAlert(fingerprint(labels), labels, {"summary": summary}, T0, None, T0 + i)


def test_one_record_per_partition_in_order_with_history_on_the_first_route() -> None:
    engine = Engine(parse_config(CONFIG), ActiveAlerts(), Silences())
    alerts = [stored(i, team="db" if i % 2 else "web") for i in range(40)]
    fired = (AlertState.INACTIVE, AlertState.FIRING)
    records = RouteOut("proc").records(engine, [(a, *fired) for a in alerts])

    assert len({r.partition for r in records}) == len(records)  # one each
    seen: dict[str, list[tuple[str, bool]]] = {}
    for record in records:
        assert record.encoded is not None
        event = decode(AlertsRouted, record.encoded)
        assert event.origin == "proc"
        order = [a.updated_at for a in event.alerts]
        assert order == sorted(order)  # merge order within the partition
        for a in event.alerts:
            assert partition_for(a.group_key, ALERT_GROUPS.partitions) == record.partition
            seen.setdefault(a.fingerprint, []).append((a.route_id, a.state is not None))
    for a in alerts:
        routes = seen[a.fingerprint]
        assert sum(carries for _, carries in routes) == 1  # history written once
        assert len(routes) == (2 if a.labels["team"] == "db" else 1)
        first = engine.routes_for(a)[0][0].id
        assert [route for route, carries in routes if carries] == [first]


def test_a_record_too_large_is_split(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(parse_config(CONFIG), ActiveAlerts(), Silences())
    alerts = [stored(i, summary="x" * 1000) for i in range(0, 64, 8)]  # some share partitions
    one = RouteOut("proc").records(engine, [(a, None, None) for a in alerts])
    monkeypatch.setattr(route_out, "MAX_RECORD_BYTES", 2_500)
    split = RouteOut("proc").records(engine, [(a, None, None) for a in alerts])
    assert len(split) > len(one)
    assert all(r.encoded is not None and len(r.encoded) <= 2_500 for r in split)

    def fps(records: list[Outgoing]) -> list[str]:
        return sorted(
            a.fingerprint
            for r in records
            for a in msgspec.json.decode(r.encoded or b"", type=AlertsRouted).alerts
        )

    assert fps(split) == fps(one)
