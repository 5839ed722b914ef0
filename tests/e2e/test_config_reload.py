"""Configuration reload with two alert-engine replicas (issue 18): every replica follows a
changed file by itself (no ``/-/reload`` sent to it), so alerts posted to either one are
routed by the new configuration; and reloads while groups are being flushed (the file
changed, ``POST /-/reload`` and SIGHUP on both replicas, repeatedly) notify every group
exactly once per state."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opsmesh_dev.infra.process import wait_until
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, Sink
from tests.e2e.test_alert_replicas import (
    GROUPS,
    alert,
    assert_once_per_state,
    notified,
    post_alerts,
    streaming,
    wait_notified,
)

# The storm test waits up to 120 s for each of its phases on a shared 2-core machine; the
# suite-wide 120 s would cut it off while it is still making progress.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

APPLIED = "alert_engine_config_reloads_total{"


def config_file(mesh: Mesh) -> Path:
    return Path(mesh.env["alert-engine"]["ALERT_ENGINE_CONFIG_FILE"])


def with_route(original: str, route: str) -> str:
    """``route`` (YAML lines at the child routes' indentation) first among the routes."""
    assert "\n  routes:\n" in original
    return original.replace("\n  routes:\n", "\n  routes:\n" + route, 1)


def applied(url: str, trigger: str | None = None) -> float:
    """Reloads this replica applied so far (by ``trigger``, else by any)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith(APPLIED)
        and 'outcome="applied"' in line
        and (trigger is None or f'trigger="{trigger}"' in line)
    )


def post_reload(url: str) -> None:
    request = urllib.request.Request(
        f"{url}/-/reload", method="POST", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@contextmanager
def two_replicas(mesh: Mesh) -> Iterator[list[str]]:
    """The mesh's alert-engine and a second replica; the configuration file as it was
    afterwards, reloaded at once."""
    file = config_file(mesh)
    original = file.read_text()
    replica = mesh.start_replica("alert-engine", "b")
    try:
        yield ["alert-engine", replica]
    finally:
        file.write_text(original)
        mesh.stop(replica)
        post_reload(mesh.running["alert-engine"].url)


def test_every_replica_follows_a_changed_configuration(mesh: Mesh, sink: Sink, unique: str) -> None:
    prefix = f"follow-{unique}-"
    services = [f"{prefix}{i}" for i in range(10)]
    with two_replicas(mesh) as keys:
        urls = [mesh.running[key].url for key in keys]
        before = {url: applied(url) for url in urls}
        # A route for this test's alerts, grouping them by test instead of by service.
        config_file(mesh).write_text(
            with_route(
                config_file(mesh).read_text(),
                f"    - matchers: ['reload_test=\"{unique}\"']\n"
                "      group_by: [alertname, reload_test]\n",
            )
        )
        for url in urls:
            wait_until(
                lambda url=url: applied(url) > before[url],
                timeout_s=60.0,
                what=f"{url} to reload the changed file by itself",
            )

        def tagged(service: str) -> dict[str, Any]:
            body = alert(service)
            body["labels"]["reload_test"] = unique
            return body

        post_alerts(urls[0], [tagged(s) for s in services[::2]])
        post_alerts(urls[1], [tagged(s) for s in services[1::2]])

        def covered() -> set[str]:
            return {
                a["labels"]["service"]
                for payload in sink.notifications(reload_test=unique)
                for a in payload["alerts"]
            }

        wait_until(
            lambda: covered() == set(services),
            timeout_s=60.0,
            what="the alerts from both replicas, notified under the new route",
        )
    # One group for the test (the new route's group_by), never one per service (the
    # old configuration's), whichever replica took the alert.
    grouped = {
        tuple(sorted(payload["groupLabels"].items()))
        for payload in sink.notifications(reload_test=unique)
    }
    assert grouped == {(("alertname", "Replicated"), ("reload_test", unique))}


def test_reloads_while_groups_flush_notify_each_group_once_per_state(
    mesh: Mesh, sink: Sink, unique: str
) -> None:
    prefix = f"reload-{unique}-"
    services = [f"{prefix}{i}" for i in range(GROUPS)]
    other_team = f"    - matchers: ['team=\"{unique}\"']\n      group_by: [alertname]\n"
    with two_replicas(mesh) as keys:
        urls = [mesh.running[key].url for key in keys]
        original = config_file(mesh).read_text()
        with streaming(urls[0], [alert(s) for s in services]):
            # The file changes under both replicas (each reloads it by itself), then
            # forced reloads on both while groups are created and flushed.
            config_file(mesh).write_text(with_route(original, other_team))
            for share in (4, 2, 1):
                wait_until(
                    lambda share=share: notified(sink, prefix, "firing") >= GROUPS // share,
                    timeout_s=120.0,
                    what=f"1/{share} of the groups notified",
                )
                for url in urls:
                    post_reload(url)
        wait_notified(sink, prefix, "firing", "every group's firing notification")
        resolves = [alert(s, resolved=True) for s in services]
        with streaming(urls[1], resolves):
            config_file(mesh).write_text(original)
            for share in (4, 2, 1):
                wait_until(
                    lambda share=share: notified(sink, prefix, "resolved") >= GROUPS // share,
                    timeout_s=120.0,
                    what=f"1/{share} of the groups resolved",
                )
                for key in keys:  # SIGHUP this time, as Alertmanager takes it
                    mesh.running[key].process.send_signal(signal.SIGHUP)
        wait_notified(sink, prefix, "resolved", "every group's resolved notification")
        for url in urls:
            wait_until(
                # At least once: signals sent close together may arrive as one.
                lambda url=url: applied(url, "sighup") >= 1,
                timeout_s=30.0,
                what=f"{url} to have reloaded on SIGHUP",
            )

    assert_once_per_state(sink, prefix, services)
