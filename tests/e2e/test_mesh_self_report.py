"""The mesh observes itself: every running service reports its dead letters and its
consumer groups' lag as catalogued signals on ``opsmesh.signals`` (what the built-in rules
NotificationDeadLettersGrowing and ConsumerLagGrowing read)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from opsmesh import catalogue
from opsmesh.events import SignalObserved
from opsmesh.topics import NOTIFICATIONS, SIGNALS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import SERVICES, Mesh
from tests.fixtures.kafka import eventually, read_all

pytestmark = pytest.mark.e2e


def _signal(record: Any) -> SignalObserved | None:
    try:
        return msgspec.json.decode(record.value or b"", type=SignalObserved)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # other tests put deliberately bad records on the topic


async def test_every_service_reports_its_dead_letters_and_consumer_lag(
    infra: Endpoints, mesh: Mesh
) -> None:
    services = {s.name for s in SERVICES}
    mesh_names = {catalogue.MESH_DEAD_LETTERS.name, catalogue.MESH_CONSUMER_LAG.name}

    async def reports() -> list[SignalObserved]:
        records = await read_all(infra.kafka_bootstrap, SIGNALS.name)
        return [s for s in map(_signal, records) if s is not None and s.name in mesh_names]

    def complete(found: list[SignalObserved]) -> bool:
        seen = {(s.name, s.labels["service"]) for s in found}
        return seen >= {(name, service) for name in mesh_names for service in services}

    found = await eventually(reports, until=complete, what="every service's self-report")
    assert all(catalogue.problems(s) == [] for s in found)
    notifier = [
        s
        for s in found
        if s.name == catalogue.MESH_DEAD_LETTERS.name and s.labels["service"] == "notifier"
    ]
    # Reported from the start, before any dead letter: the rate rule has its history.
    assert NOTIFICATIONS.name in {s.labels["source_topic"] for s in notifier}
    lag = [s for s in found if s.name == catalogue.MESH_CONSUMER_LAG.name]
    alert_engine_groups = {s.labels["group"] for s in lag if s.labels["service"] == "alert-engine"}
    assert len(alert_engine_groups) == 2  # evaluation and dispatch
    assert all(s.value >= 0 for s in lag)
