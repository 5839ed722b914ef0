"""Two alert-engine replicas split the aggregation groups; killing one mid-stream
notifies no group twice and misses none."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from opsmesh.devinfra.process import wait_until
from opsmesh.devtools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, Sink

pytestmark = pytest.mark.e2e

GROUPS = 40


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def counts(sink: Sink, prefix: str) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for entry in sink.received():
        payload = entry["payload"]
        service = payload["commonLabels"].get("service", "")
        if service.startswith(prefix):
            key = (service, payload["status"])
            out[key] = out.get(key, 0) + 1
    return out


def test_a_replica_killed_mid_stream_loses_and_duplicates_nothing(
    mesh: Mesh, sink: Sink, unique: str
) -> None:
    prefix = f"rep-{unique}-"
    services = [f"{prefix}{i}" for i in range(GROUPS)]
    replica = mesh.start_replica("alert-engine", "b")
    first, second = mesh.running["alert-engine"].url, mesh.running[replica].url
    try:

        def alert(service: str, resolved: bool = False) -> dict[str, Any]:
            body: dict[str, Any] = {"labels": {"alertname": "Replicated", "service": service}}
            if resolved:
                body["endsAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
            return body

        # Alerts arrive at both replicas; each group is flushed by its partition's owner.
        post_alerts(first, [alert(s) for s in services[::2]])
        post_alerts(second, [alert(s) for s in services[1::2]])
        wait_until(
            lambda: sum(1 for (_, status) in counts(sink, prefix) if status == "firing") == GROUPS,
            timeout_s=90.0,
            what="every group's firing notification",
        )

        post_alerts(first, [alert(s, resolved=True) for s in services[: GROUPS // 2]])
        mesh.kill("alert-engine")  # mid-stream: some resolves may be flushed, some not
        post_alerts(second, [alert(s, resolved=True) for s in services[GROUPS // 2 :]])
        wait_until(
            lambda: (
                sum(1 for (_, status) in counts(sink, prefix) if status == "resolved") == GROUPS
            ),
            timeout_s=90.0,
            what="every group's resolved notification (after the survivor took over)",
        )
    finally:
        mesh.stop(replica)
        if "alert-engine" not in mesh.running:
            mesh.restart("alert-engine")

    seen = counts(sink, prefix)
    assert seen == {(s, status): 1 for s in services for status in ("firing", "resolved")}, (
        "every group notified exactly once per state; the repeated ones: "
        + repeated(sink, {key for key, n in seen.items() if n > 1})
    )


def repeated(sink: Sink, keys: set[tuple[str, str]]) -> str:
    """What tells a re-sent flush (same webhook id: the notifier's dedup) from a second
    flush (another id: the engine planned twice)."""
    return "; ".join(
        f"{e['payload']['commonLabels'].get('service')} {e['payload']['status']}"
        f" reason={e['payload'].get('notificationReason')} webhook_id={e.get('webhook_id')}"
        for e in sink.received()
        if (e["payload"]["commonLabels"].get("service", ""), e["payload"]["status"]) in keys
    )
