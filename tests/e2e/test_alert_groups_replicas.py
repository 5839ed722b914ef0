"""``GET /api/v2/alerts/groups`` (and ``/api/v2/alerts``) answer with the whole
deployment, whichever replica is asked (issue 18): two replicas, each owning some of the
groups' partitions, list the same complete set of groups — also filtered, with a
silence, and with an inhibited alert."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from alert_engine.core.routing import format_label_set
from opsmesh.labels import fingerprint
from opsmesh.topics import ALERT_GROUPS, GROUP_ALERT_DISPATCH, partition_for
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.process import wait_until
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, READ_TOKEN

pytestmark = pytest.mark.e2e

ALERTNAME = "GroupsEverywhere"
PER_PARTITION = 2  # groups per partition of opsmesh.alert-groups: each replica owns some


def request(url: str, method: str = "GET", body: Any = None, token: str = READ_TOKEN) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read() or b"null")


def group_key(service: str) -> str:
    """The root route's key for the e2e configuration's ``group_by: [alertname, service]``."""
    return "{}:" + format_label_set({"alertname": ALERTNAME, "service": service})


def assignments(bootstrap: str) -> list[set[int]]:
    """The ``opsmesh.alert-groups`` partitions of each member of the engines' dispatch
    group, once the group is stable (the members are the replicas: each owns the groups
    of its partitions)."""

    async def describe() -> list[set[int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            responses = await admin.describe_consumer_groups([GROUP_ALERT_DISPATCH])
        finally:
            await admin.close()
        out = []
        # DescribeGroups: (error_code, group_id, state, protocol_type, protocol, members)
        for group in (g for r in responses for g in r.groups):
            if group[1] != GROUP_ALERT_DISPATCH or group[2] != "Stable":
                return []
            for member in group[5]:  # (member_id, client_id, host, metadata, assignment)
                assigned = ConsumerProtocolMemberAssignment.decode(member[-1]).assignment
                out.append({p for topic, ps in assigned if topic == ALERT_GROUPS.name for p in ps})
        return out

    return asyncio.run(describe())


def groups(url: str, prefix: str, **params: str) -> list[dict[str, Any]]:
    """The answer's groups of this test's services (the mesh is shared with other tests)."""
    query = urllib.parse.urlencode(params)
    answer = request(f"{url}/api/v2/alerts/groups?{query}")
    return [g for g in answer if g["labels"].get("service", "").startswith(prefix)]


def alerts(url: str, prefix: str, **params: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode(params)
    answer = request(f"{url}/api/v2/alerts?{query}")
    return [a for a in answer if a["labels"].get("service", "").startswith(prefix)]


def summary(listed: list[dict[str, Any]]) -> dict[str, dict[str, tuple[Any, ...]]]:
    """service → {severity: (state, silencedBy, inhibitedBy, mutedBy, receivers)}, of
    groups (each one service's, for the default receiver) or of alerts."""
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    for item in listed:
        if "fingerprint" in item:  # an alert of /api/v2/alerts
            service, members = item["labels"]["service"], [item]
        else:
            assert item["receiver"] == {"name": "default"}
            assert item["labels"] == {"alertname": ALERTNAME, "service": item["labels"]["service"]}
            service, members = item["labels"]["service"], item["alerts"]
        for a in members:
            status = a["status"]
            assert a["labels"]["service"] == service
            out.setdefault(service, {})[a["labels"]["severity"]] = (
                status["state"],
                status["silencedBy"],
                status["inhibitedBy"],
                status["mutedBy"],
                [r["name"] for r in a["receivers"]],
            )
    return out


def posted(service: str, severity: str) -> dict[str, Any]:
    return {"labels": {"alertname": ALERTNAME, "service": service, "severity": severity}}


def post(url: str, body: list[dict[str, Any]]) -> None:
    request(f"{url}/api/v2/alerts", "POST", body, API_TOKEN)


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def agreed(urls: list[str], listing: Any, expected: Any, **params: str) -> None:
    """Wait until every replica's answer is ``expected``; then they are the same JSON."""
    answers: list[Any] = []

    def same() -> bool:
        answers[:] = [listing(url, **params) for url in urls]
        return all(summary(a) == expected for a in answers)

    try:
        wait_until(same, timeout_s=30.0, what=f"every replica listing the groups ({params})")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nanswers: {[summary(a) for a in answers]}") from None
    assert answers[0] == answers[1], "both replicas answer alike, field by field"


def test_every_replica_lists_every_group_of_the_deployment(
    infra: Endpoints, mesh: Mesh, unique: str
) -> None:
    prefix = f"grp-{unique}-"
    replica = mesh.start_replica("alert-engine", "b")
    first, second = mesh.running["alert-engine"].url, mesh.running[replica].url
    urls = [first, second]
    try:
        partitions = set(range(ALERT_GROUPS.partitions))
        members: list[set[int]] = []

        def split() -> bool:
            members[:] = assignments(infra.kafka_bootstrap)
            return len(members) == 2 and all(members) and set().union(*members) == partitions

        wait_until(split, timeout_s=60.0, what="the two replicas splitting the partitions")
        # Services whose groups fill every partition, so each replica owns some of them.
        by_partition: dict[int, list[str]] = {p: [] for p in partitions}
        i = 0
        while any(len(s) < PER_PARTITION for s in by_partition.values()):
            service = f"{prefix}{i}"
            found = by_partition[partition_for(group_key(service), ALERT_GROUPS.partitions)]
            if len(found) < PER_PARTITION:
                found.append(service)
            i += 1
        services = sorted(s for found in by_partition.values() for s in found)

        # Each replica takes half; the first service also has a critical alert, which
        # inhibits its warning (the configuration's inhibit rule, equal: [service]).
        inhibited = services[0]
        post(first, [posted(s, "warning") for s in services[::2]])
        post(second, [posted(s, "warning") for s in services[1::2]])
        post(second, [posted(inhibited, "critical")])

        active = ("active", [], [], [], ["default"])
        expected = {s: {"warning": active} for s in services}
        critical_fp = fingerprint(posted(inhibited, "critical")["labels"])
        expected[inhibited] = {
            "warning": ("suppressed", [], [critical_fp], [], ["default"]),
            "critical": active,
        }
        agreed(urls, lambda url, **p: groups(url, prefix, **p), expected)
        agreed(urls, lambda url, **p: alerts(url, prefix, **p), expected)

        # A filter, Alertmanager's way, on either replica.
        one = services[-1]
        agreed(
            urls,
            lambda url, **p: groups(url, prefix, **p),
            {one: expected[one]},
            filter=f'service="{one}"',
        )
        agreed(
            urls,
            lambda url, **p: groups(url, prefix, **p),
            {s: v for s, v in expected.items() if s != inhibited}
            | {inhibited: {"critical": active}},
            inhibited="false",
        )
        agreed(urls, lambda url, **p: groups(url, prefix, **p), {}, receiver="nobody")

        # A silence made through one replica shows on both, in PostgreSQL at once.
        silenced = services[1]
        now = time.time()
        silence_id = request(
            f"{second}/api/v2/silences",
            "POST",
            {
                "matchers": [{"name": "service", "value": silenced, "isRegex": False}],
                "startsAt": iso(now - 60),
                "endsAt": iso(now + 3600),
                "createdBy": "e2e",
                "comment": "groups on every replica",
            },
            API_TOKEN,
        )["silenceID"]
        expected[silenced] = {"warning": ("suppressed", [silence_id], [], [], ["default"])}
        # Read from PostgreSQL for the request: the other replica shows it at once (its
        # own copy of the silences is only re-read every sync).
        assert summary(groups(first, prefix)) == expected
        agreed(urls, lambda url, **p: groups(url, prefix, **p), expected)
        unsilenced = {s: v for s, v in expected.items() if s != silenced}
        agreed(urls, lambda url, **p: groups(url, prefix, **p), unsilenced, silenced="false")
        request(f"{first}/api/v2/silence/{silence_id}", "DELETE", None, API_TOKEN)

        # Resolved through either replica: no replica lists them any more.
        ended = iso(time.time() - 1)
        post(second, [{**posted(s, "warning"), "endsAt": ended} for s in services])
        post(first, [{**posted(inhibited, "critical"), "endsAt": ended}])
        agreed(urls, lambda url, **p: groups(url, prefix, **p), {})
        agreed(urls, lambda url, **p: alerts(url, prefix, **p), {})
    finally:
        mesh.stop(replica)
