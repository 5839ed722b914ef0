"""OpsGenieChannel against a fake Opsgenie Alert API v2 served over TLS with a test CA.

The fake speaks the API as documented: ``GenieKey`` authentication (401 without it),
``message`` required on create (422), 202 with a ``requestId`` for every accepted request,
alerts addressed by alias (``identifierType=alias``) for close and updates."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.build import build
from notifier.channels.opsgenie import OpsGenieChannel, alert_alias
from notifier.channels.safe_http import safe_session
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from opsmesh.events.alerts import AlertStatus
from opsmesh_dev.testing.clock import FakeClock

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])
ORIGIN_ONLY = TargetPolicy.from_strings(["127.0.0.1/32"])
API_KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpsgenie:
    base: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # before 202s
    calls: list[Call] = field(default_factory=list)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by alias

    def by_method(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]


def _accepted() -> web.Response:
    return web.json_response(
        {"result": "Request will be processed", "took": 0.02, "requestId": str(uuid.uuid4())},
        status=202,
    )


@pytest.fixture
async def opsgenie(certs: Any) -> AsyncIterator[FakeOpsgenie]:
    fake = FakeOpsgenie()

    def refused(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"GenieKey {API_KEY}":
            # Opsgenie's answer echoes nothing secret; this fake echoes the header so a
            # test can prove the channel's error never shows the key.
            return web.json_response(
                {"message": f"Could not authenticate: {request.headers.get('Authorization')}"},
                status=401,
            )
        if fake.answers:
            status, headers = fake.answers.pop(0)
            return web.json_response(
                {"message": f"failure for key {API_KEY}"}, status=status, headers=headers
            )
        return None

    async def record(request: web.Request) -> dict[str, Any]:
        body = await request.json()
        fake.calls.append(Call(request.method, request.path, dict(request.query), body))
        return body

    async def create(request: web.Request) -> web.Response:
        body = await record(request)
        if (answer := refused(request)) is not None:
            return answer
        if not body.get("message"):
            return web.json_response({"message": "Message can not be empty."}, status=422)
        fake.alerts[body["alias"]] = {**body, "status": "open"}
        return _accepted()

    async def by_alias(request: web.Request) -> web.Response:
        body = await record(request)
        if (answer := refused(request)) is not None:
            return answer
        if request.query.get("identifierType") != "alias":
            return web.json_response({"message": "identifierType must be alias"}, status=400)
        alias, action = request.match_info["alias"], request.match_info["action"]
        alert = fake.alerts.setdefault(alias, {"status": "unknown"})
        if action == "close":
            alert["status"] = "closed"
        else:
            alert[action] = body.get(action)
        return _accepted()

    app = web.Application()
    app.router.add_post("/og/v2/alerts", create)
    app.router.add_post("/og/v2/alerts/{alias}/{action:close}", by_alias)
    app.router.add_put("/og/v2/alerts/{alias}/{action:message|description}", by_alias)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    fake.base = f"https://localhost:{runner.addresses[0][1]}/og"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def session(certs: Any) -> AsyncIterator[aiohttp.ClientSession]:
    async with safe_session(LOOPBACK, timeout_s=5.0, ssl_context=certs.client_context()) as s:
        yield s


@pytest.fixture(scope="module")
def renderer_binary() -> Path:
    return build()


@pytest.fixture
async def templates(renderer_binary: Path) -> AsyncIterator[AlertmanagerTemplates]:
    renderer = GoRenderer(renderer_binary, workers=1)
    yield AlertmanagerTemplates(renderer)
    await renderer.close()


def make(
    config: dict[str, Any],
    session: aiohttp.ClientSession,
    templates: AlertmanagerTemplates,
    *,
    glob: dict[str, Any] | None = None,
    policy: TargetPolicy = LOOPBACK,
    base_dir: Path | None = None,
) -> OpsGenieChannel:
    raw = {"global": glob or {}, "receivers": [{"name": "ops", "opsgenie_configs": [config]}]}
    parsed = parse_receivers(raw, base_dir=base_dir)["ops"].opsgenie_configs[0]
    return OpsGenieChannel(
        name="opsgenie-0",
        config=parsed,
        session=session,
        policy=policy,
        clock=FakeClock(1_700_000_000.0),
        templates=templates,
    )


async def test_create_then_close_address_one_alert_by_the_group_keys_hash(
    opsgenie: FakeOpsgenie, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    channel = make({"api_key": API_KEY, "api_url": opsgenie.base}, session, templates)
    firing = sample_request("ops")
    assert (await channel.send(firing)).ok
    assert (await channel.send(sample_request("ops", status=AlertStatus.RESOLVED))).ok
    create, close = opsgenie.calls
    alias = hashlib.sha256(firing.group_key.encode()).hexdigest()
    assert alert_alias(firing.group_key) == alias
    assert (create.method, create.path) == ("POST", "/og/v2/alerts")
    # Alertmanager's defaults: its subject, the alert list, a link to the receiver's alerts.
    assert create.body["alias"] == alias
    assert create.body["message"] == "[FIRING:1] DiskAlmostFull checkout (db-1:9100 page)"
    assert create.body["description"].startswith(
        "Free space has been below 5% for 10 minutes. https://runbooks.example.com/"
    )
    assert (
        "Alerts Firing:\nLabels:\n - alertname = DiskAlmostFull\n" in (create.body["description"])
    )
    assert create.body["source"] == (
        "https://opsmesh.example.com/groups/checkout/#/alerts?receiver=ops"
    )
    # The common labels are the details (none configured).
    assert create.body["details"] == {
        "alertname": "DiskAlmostFull",
        "instance": "db-1:9100",
        "service": "checkout",
        "severity": "page",
    }
    assert set(create.body) == {"alias", "message", "description", "details", "source"}
    assert (close.method, close.path, close.query) == (
        "POST",
        f"/og/v2/alerts/{alias}/close",
        {"identifierType": "alias"},
    )
    assert close.body == {"source": create.body["source"]}
    assert opsgenie.alerts[alias]["status"] == "closed"


async def test_every_field_renders_and_update_alerts_updates_the_open_alert(
    opsgenie: FakeOpsgenie, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    config = {
        "api_key": API_KEY,
        "api_url": opsgenie.base + "/",
        "message": "{{ .CommonLabels.alertname }} on {{ .CommonLabels.service }}",
        "description": "{{ .CommonAnnotations.summary }}",
        "source": "opsmesh/{{ .Receiver }}",
        "details": {"runbook": "{{ .CommonAnnotations.runbook_url }}", "service": "overridden"},
        "entity": "{{ .GroupLabels.service }}",
        "responders": [
            {"name": "sre, dba,", "type": "teams"},
            {"username": "oncall@example.com", "type": "User"},
            {"id": "{{ .CommonLabels.nothing }}", "type": "{{ .CommonLabels.nothing }}"},
            {"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "escalation"},
        ],
        "actions": "restart,, page-dba",
        "tags": "{{ .CommonLabels.severity }},disk, {{ .CommonLabels.nothing }}",
        "note": "first seen by {{ .Receiver }}",
        "priority": '{{ if eq .CommonLabels.severity "page" }}P1{{ else }}P3{{ end }}',
        "update_alerts": True,
    }
    channel = make(config, session, templates)
    assert (await channel.send(sample_request("ops"))).ok
    create, message, description = opsgenie.calls
    alias = create.body["alias"]
    assert create.body == {
        "alias": alias,
        "message": "DiskAlmostFull on checkout",
        "description": "Disk <sda1> is 97% full & climbing",
        "details": {
            "alertname": "DiskAlmostFull",
            "instance": "db-1:9100",
            "service": "overridden",
            "severity": "page",
            "runbook": "https://runbooks.example.com/disk-almost-full",
        },
        "source": "opsmesh/ops",
        # "teams" is split into one team per name; an all-empty responder is dropped.
        "responders": [
            {"name": "sre", "type": "team"},
            {"name": " dba", "type": "team"},
            {"username": "oncall@example.com", "type": "User"},
            {"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "escalation"},
        ],
        "tags": ["page", "disk"],  # trimmed as a whole, then split
        "note": "first seen by ops",
        "priority": "P1",
        "entity": "checkout",
        "actions": ["restart", " page-dba"],
    }
    assert (message.method, message.path, message.query) == (
        "PUT",
        f"/og/v2/alerts/{alias}/message",
        {"identifierType": "alias"},
    )
    assert message.body == {"message": "DiskAlmostFull on checkout"}
    assert description.body == {"description": "Disk <sda1> is 97% full & climbing"}
    assert opsgenie.alerts[alias]["message"] == "DiskAlmostFull on checkout"


async def test_the_message_is_cut_to_the_apis_130_characters(
    opsgenie: FakeOpsgenie, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    config = {"api_key": API_KEY, "api_url": opsgenie.base, "message": "é" * 200}
    assert (await make(config, session, templates).send(sample_request("ops"))).ok
    assert opsgenie.calls[0].body["message"] == "é" * 129 + "…"


async def test_global_key_file_and_url_apply(
    opsgenie: FakeOpsgenie,
    session: aiohttp.ClientSession,
    templates: AlertmanagerTemplates,
    tmp_path: Path,
) -> None:
    (tmp_path / "opsgenie-key").write_text(API_KEY + "\n")
    glob = {"opsgenie_api_key_file": "opsgenie-key", "opsgenie_api_url": opsgenie.base}
    channel = make({}, session, templates, glob=glob, base_dir=tmp_path)
    assert (await channel.send(sample_request("ops"))).ok
    assert opsgenie.calls[0].path == "/og/v2/alerts"


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"Retry-After": "7"}, FailureKind.RATE_LIMITED, 7.0),
        (503, {}, FailureKind.SERVER_ERROR, None),
        (422, {}, FailureKind.CLIENT_ERROR, None),
        (403, {}, FailureKind.CLIENT_ERROR, None),
    ],
)
async def test_answers_are_classified_and_the_key_never_shows(
    opsgenie: FakeOpsgenie,
    session: aiohttp.ClientSession,
    templates: AlertmanagerTemplates,
    answer: tuple[int, dict[str, str], FailureKind, float | None],
) -> None:
    status, headers, kind, retry_after = answer
    opsgenie.answers = [(status, headers)]
    channel = make({"api_key": API_KEY, "api_url": opsgenie.base}, session, templates)
    result = await channel.send(sample_request("ops"))
    assert (result.ok, result.status_code, result.failure) == (False, status, kind)
    assert kind.retryable is (status >= 429)
    assert result.retry_after_s == retry_after
    assert f"answered {status}" in (result.error or "")
    assert API_KEY not in (result.error or "")
    # The retry sends the same create; Opsgenie folds it into the alert by alias.
    assert (await channel.send(sample_request("ops"))).ok


async def test_a_wrong_key_is_a_client_error_without_the_key(
    opsgenie: FakeOpsgenie, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    wrong = "ffffffff-0000-1111-2222-333333333333"
    channel = make({"api_key": wrong, "api_url": opsgenie.base}, session, templates)
    result = await channel.send(sample_request("ops"))
    assert (result.status_code, result.failure) == (401, FailureKind.CLIENT_ERROR)
    assert "Could not authenticate" in (result.error or "")
    assert wrong not in (result.error or "")


async def test_a_templated_key_renders_and_stays_secret(
    opsgenie: FakeOpsgenie, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    # Alertmanager renders the key as a template; the rendered key is as secret as it.
    templated = '{{ if eq .Receiver "ops" }}' + API_KEY + "{{ end }}"
    channel = make({"api_key": templated, "api_url": opsgenie.base}, session, templates)
    assert (await channel.send(sample_request("ops"))).ok
    opsgenie.answers = [(400, {})]
    result = await channel.send(sample_request("ops"))
    assert result.failure is FailureKind.CLIENT_ERROR
    assert API_KEY not in (result.error or "")


async def test_a_failing_template_is_final(
    opsgenie: FakeOpsgenie, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    config = {"api_key": API_KEY, "api_url": opsgenie.base, "note": '{{ template "nope" . }}'}
    result = await make(config, session, templates).send(sample_request("ops"))
    assert result.failure is FailureKind.TEMPLATE
    assert not result.failure.retryable
    assert opsgenie.calls == []


async def test_a_target_outside_the_policy_is_refused_before_connecting(
    templates: AlertmanagerTemplates,
) -> None:
    seen: list[str] = []

    async def trap(request: web.Request) -> web.Response:
        seen.append(request.path)
        return _accepted()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", trap)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    try:
        url = f"http://127.0.0.2:{runner.addresses[0][1]}/"
        async with safe_session(ORIGIN_ONLY, timeout_s=5.0) as guarded:
            channel = make(
                {"api_key": API_KEY, "api_url": url}, guarded, templates, policy=ORIGIN_ONLY
            )
            result = await channel.send(sample_request("ops"))
    finally:
        await runner.cleanup()
    assert result.failure is FailureKind.REFUSED_TARGET
    assert seen == []
    assert API_KEY not in json.dumps(result.error)
