"""An ingest-only alert-engine process (ALERT_ENGINE_OWNS_GROUPS=false) takes POSTs and
owns no groups: the owning process persists, groups and notifies every alert, once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from opsmesh_dev.infra.process import wait_until
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import Sink
from tests.e2e.test_alert_replicas import counts, post_alerts

pytestmark = pytest.mark.e2e

GROUPS = 12


def test_an_ingest_only_process_hands_every_alert_to_the_group_owners(
    mesh: Mesh, sink: Sink, unique: str
) -> None:
    prefix = f"ingest-{unique}-"
    services = [f"{prefix}{i}" for i in range(GROUPS)]
    mesh.env["alert-engine#ingest"] = {"ALERT_ENGINE_OWNS_GROUPS": "false"}
    replica = mesh.start_replica("alert-engine", "ingest")
    try:
        url = mesh.running[replica].url

        def alert(service: str, resolved: bool = False) -> dict[str, Any]:
            body: dict[str, Any] = {"labels": {"alertname": "IngestOnly", "service": service}}
            if resolved:
                body["endsAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
            return body

        post_alerts(url, [alert(s) for s in services])
        wait_until(
            lambda: sum(1 for (_, status) in counts(sink, prefix) if status == "firing") == GROUPS,
            timeout_s=90.0,
            what="every group's firing notification, sent by the owning process",
        )
        post_alerts(url, [alert(s, resolved=True) for s in services])
        wait_until(
            lambda: (
                sum(1 for (_, status) in counts(sink, prefix) if status == "resolved") == GROUPS
            ),
            timeout_s=90.0,
            what="every group's resolved notification",
        )
        # The history the owner wrote for alerts it never received over HTTP.
        fingerprint = sink.notifications(service=services[0])[0]["alerts"][0]["fingerprint"]
        found = mesh.get_json("alert-engine", f"/api/v1/alerts/{fingerprint}/history")
        assert isinstance(found, dict)
        assert [(h["previous"], h["state"]) for h in found["history"]] == [
            ("inactive", "firing"),
            ("firing", "resolved"),
        ]
    finally:
        mesh.stop(replica)
        mesh.env.pop("alert-engine#ingest", None)
    assert counts(sink, prefix) == {
        (s, status): 1 for s in services for status in ("firing", "resolved")
    }
