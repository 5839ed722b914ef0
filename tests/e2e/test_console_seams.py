"""Each seam of the console against the real service behind it: what the console sends
is what the service takes, and what the service answers decodes into what the console's
pages read (the alert-engine's v2 alerts, groups and silences; its pending rule alerts;
history, explain and held notifications; the notifier's receivers; health-aggregator's
services; query-analyzer's queries and findings)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest

from alert_engine.api.openapi import openapi_document
from console.core.shapes import pending_decoder
from console.core.silences import SilenceForm
from console.upstream import AlertEngine, Upstream, UpstreamError
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, READ_TOKEN
from tests.e2e.console_fixtures import delete_rules, make_pending
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.e2e


def post_alert(mesh: Mesh, labels: dict[str, str]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "seam"}}]).encode()
    req = urllib.request.Request(
        f"{mesh.running['alert-engine'].url}/api/v2/alerts", data=body, method="POST"
    )
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {API_TOKEN}")
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_the_alert_engine_seam_groups_silences_history_explain(
    mesh: Mesh, http: aiohttp.ClientSession, unique: str
) -> None:
    engine = AlertEngine("alert-engine", mesh.running["alert-engine"].url, http)
    labels = {"alertname": f"Seam{unique}", "service": "checkout", "severity": "critical"}
    await asyncio.to_thread(post_alert, mesh, labels)

    async def mine() -> list[Any]:
        return [
            (g, a)
            for g in await engine.groups()
            for a in g.alerts
            if a.labels.get("alertname") == labels["alertname"]
        ]

    [(group, alert)] = await eventually(mine, until=bool, what="the posted alert in a group")
    # Grouped as the e2e route groups (group_by: [alertname, service]), receiver included.
    assert group.labels == {"alertname": labels["alertname"], "service": "checkout"}
    assert group.receiver.name == "default"
    assert alert.status.state == "active"
    assert abs(alert.starts_at.timestamp() - time.time()) < 120

    explain = await engine.explain(alert.labels)
    assert [r["receiver"] for r in explain["routes"]] == ["default"]
    assert explain["routes"][0]["timers"]["group_wait"] == "500ms"
    assert isinstance(await engine.history(alert.fingerprint), list)
    assert isinstance(await engine.suppressed(), list)

    # A silence the console's form makes is taken by the engine as it is.
    form = SilenceForm(f'alertname="Seam{unique}"', "1h", "seam-test", "proving the seam")
    silence_id = await engine.save_silence(form.to_postable(time.time()), API_TOKEN)
    stored = await engine.silence(silence_id)
    assert (stored.created_by, stored.comment, stored.status.state) == (
        "seam-test",
        "proving the seam",
        "active",
    )
    assert SilenceForm.for_silence(stored, time.time()).matchers == form.matchers
    [(_, silenced)] = await eventually(
        mine, until=lambda found: found[0][1].status.silenced_by == [silence_id], what="muted"
    )
    assert silenced.status.state == "suppressed"
    assert silence_id in {s.id for s in await engine.silences()}

    # An edit from the form: as Alertmanager, the engine updates the silence in place or
    # replaces it (expiring the old one); either way the console follows the id it gets.
    edit = dataclasses.replace(SilenceForm.for_silence(stored, time.time()), comment="longer")
    edited_id = await engine.save_silence(edit.to_postable(time.time()), API_TOKEN)
    assert (await engine.silence(edited_id)).comment == "longer"
    if edited_id != silence_id:
        assert (await engine.silence(silence_id)).status.state == "expired"
    silence_id = edited_id

    # The session's token is what the engine checks: a read token may not write.
    with pytest.raises(UpstreamError) as refused:
        await engine.expire_silence(silence_id, READ_TOKEN)
    assert refused.value.status == 403
    assert not refused.value.transient
    await engine.expire_silence(silence_id, API_TOKEN)
    assert (await engine.silence(silence_id)).status.state == "expired"


async def test_the_other_services_seams(mesh: Mesh, http: aiohttp.ClientSession) -> None:
    notifier = Upstream("notifier", mesh.running["notifier"].url, http)
    receivers = await notifier.get_json("/api/v1/receivers")
    assert {"name", "integrations"} <= set(receivers[0])

    health = Upstream("health-aggregator", mesh.running["health-aggregator"].url, http)
    services = await health.get_json("/api/v1/services")
    assert isinstance(services, list)
    for item in services:  # the fields the health board shows
        assert {"service", "status", "healthy", "total", "policy", "reason", "checks"} <= set(item)

    queries = Upstream("query-analyzer", mesh.running["query-analyzer"].url, http)
    assert isinstance(await queries.get_json("/api/v1/queries", {"limit": "100"}), list)
    assert isinstance(await queries.get_json("/api/v1/findings", {"limit": "50"}), list)
    assert isinstance(await queries.get_json("/api/v1/recommendations", {"limit": "50"}), list)
    with pytest.raises(UpstreamError) as unknown:
        await queries.get_json("/api/v1/queries/0123456789abcdef")
    assert unknown.value.status == 404


async def test_the_alert_engine_seam_pending_rule_alerts(
    mesh: Mesh, http: aiohttp.ClientSession, unique: str
) -> None:
    engine = AlertEngine("alert-engine", mesh.running["alert-engine"].url, http)
    name = f"SeamPending{unique}"
    group = await make_pending(mesh, unique, name)
    try:

        async def answered() -> Any:
            return json.loads(await engine.pending_body())

        body = await eventually(
            answered,
            until=lambda found: any(p["labels"].get("alertname") == name for p in found["pending"]),
            what="the rule's pending alert at the engine",
        )
        # The engine's real answer is what its document declares, and what the feed decodes.
        document = openapi_document()["paths"]["/api/v1/alerts"]["get"]["responses"]["200"]
        jsonschema.validate(body, document["content"]["application/json"]["schema"])
        assert body["alerts"] == []  # pending_only: the routed alerts are left out
        [mine] = [
            p
            for p in pending_decoder.decode(json.dumps(body).encode()).pending
            if p.labels.get("alertname") == name
        ]
        assert mine.rule == name
        assert mine.labels["severity"] == "warning"
        assert mine.value == 5.0
        assert mine.active_at is not None
        assert abs(mine.active_at - time.time()) < 120
    finally:
        await asyncio.to_thread(delete_rules, mesh, group)
