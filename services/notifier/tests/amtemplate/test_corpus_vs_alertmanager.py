"""Real-world Alertmanager templates rendered by opsmesh and by Alertmanager itself.

Debian's Alertmanager (0.25) is started with one receiver per case (Slack, PagerDuty and
Opsgenie pointed at a local HTTP sink, email at a local SMTP server), the same alerts are posted to
it, and what it sends is compared byte for byte with what opsmesh renders for the same
notification (``opsmesh-amtemplate``, built on Alertmanager 0.35's template package).

Known differences between the two Alertmanager versions, asserted rather than hidden:
0.27 changed ``http://schema.org`` to ``https://schema.org`` in the default email; 0.26
made label sets print as ``a=b, c=d`` (``KV.String``) where 0.25 printed ``map[a:b c:d]``;
and PagerDuty ``details`` values are YAML-typed since 0.28 (``"2"`` became ``2``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.messages import (
    email_fields,
    opsgenie_fields,
    pagerduty_fields,
    prefixed,
    slack_fields,
    slack_message,
)
from notifier.channels.email import build_am_message
from notifier.channels.opsgenie import api_calls
from notifier.core.pagerduty_event import am_event
from notifier.receivers.loading import parse_receivers
from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason

# Replaced by recent instants when posted (``run``): Alertmanager flushes a new group at
# once for an alert older than group_wait, racing the rest of the POST.
STARTS = "2024-03-10T14:30:00.123Z"
GROUP_WAIT = "4s"

# A custom `templates:` file as teams write them (define/template, with/else, range over
# sorted pairs, reReplaceAll, title, match, nested templates, whitespace trimming).
CORPUS_TMPL = r"""
{{ define "team.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}{{ with .CommonLabels.job }} ({{ . }}){{ end }}
{{- end }}

{{ define "team.alert" -}}
*{{ .Labels.alertname }}* on `{{ .Labels.instance }}`{{ if .Labels.severity }} [{{ .Labels.severity | toUpper }}]{{ end }}
{{- with .Annotations.summary }}
> {{ . | reReplaceAll "(\\d+)%" "$1 percent" }}{{ end }}
{{- range .Labels.SortedPairs }}
  • {{ .Name | title }}: {{ .Value }}{{ end }}
{{ end }}

{{ define "team.text" -}}
{{ if gt (len .Alerts.Firing) 0 }}*Firing*
{{ range .Alerts.Firing }}{{ template "team.alert" . }}{{ end }}{{ end -}}
{{ if gt (len .Alerts.Resolved) 0 }}*Resolved*
{{ range .Alerts.Resolved }}{{ template "team.alert" . }}ended {{ .EndsAt }}
{{ end }}{{ end -}}
{{ if match "^Disk" .CommonLabels.alertname }}:floppy_disk: disk alert{{ else }}other{{ end }}
{{- end }}

{{ define "team.email.html" }}<h1>{{ template "team.title" . }}</h1>
<ul>{{ range .Alerts }}<li><a href="{{ .GeneratorURL }}">{{ .Labels.alertname }}</a>: {{ .Annotations.summary }}
<a href="{{ $.ExternalURL }}/#/silences/new?filter={{ .Labels.alertname | urlquery }}">silence</a></li>{{ end }}</ul>
<p style="color: {{ if eq .Status "firing" }}red{{ else }}green{{ end }}">{{ .CommonAnnotations.description | safeHtml }}</p>
<script>var receiver = {{ .Receiver }};</script>
{{ end }}
"""


def _alert(instance: str, **extra: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": "DiskAlmostFull", "job": "node", "instance": instance, **extra},
        "annotations": {
            "summary": f"Disk <sda1> on {instance} is 97% full & climbing",
            "description": "Free space <b>below</b> 5% for 10 minutes.",
            "runbook_url": "https://runbooks.example.com/disk?x=1&y=<2>",
        },
        "startsAt": STARTS,
        "generatorURL": f"http://prometheus.example.com/graph?g0.expr=disk%7Binstance%3D%22{instance}%22%7D",
    }


@dataclass
class Case:
    name: str
    receiver: dict[str, Any]  # the integration, without where it sends
    alerts: list[dict[str, Any]] = field(default_factory=lambda: [_alert("db-1:9100")])
    resolve: list[str] = field(default_factory=list)  # instances resolved in phase 2


SLACK_TITLE = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
    "{{ .CommonLabels.alertname }} for {{ .CommonLabels.job }}"
)
# The template of many Slack-notification tutorials.
SLACK_TEXT = """{{ range .Alerts -}}
*Alert:* {{ .Annotations.summary }}{{ if .Labels.severity }} - `{{ .Labels.severity }}`{{ end }}

*Description:* {{ .Annotations.description }}

*Details:*
  {{ range .Labels.SortedPairs }} • *{{ .Name }}:* `{{ .Value }}`
  {{ end }}
{{ end }}"""

CASES = [
    Case("slack.default", {"slack_configs": [{}]}),
    Case(
        "slack.tutorial",
        {"slack_configs": [{"title": SLACK_TITLE, "text": SLACK_TEXT}]},
        alerts=[_alert("db-1:9100", severity="page"), _alert("db-2:9100", severity="page")],
    ),
    Case(
        "slack.custom-defines",
        {
            "slack_configs": [
                {
                    "title": '{{ template "team.title" . }}',
                    "text": '{{ template "team.text" . }}',
                    "pretext": "{{ .CommonAnnotations.summary }}",
                    "footer": '{{ template "slack.default.footer" . }}{{ .ExternalURL }}',
                    "color": '{{ if eq .Status "firing" }}#d00{{ else }}#0a0{{ end }}',
                    "username": "{{ .Receiver }}",
                    "icon_emoji": ":{{ .GroupLabels.alertname | toLower }}:",
                    "fields": [
                        {
                            "title": "Instances",
                            "value": "{{ range .Alerts }}{{ .Labels.instance }} {{ end }}",
                            "short": True,
                        },
                        {"title": "{{ .CommonLabels.job }}", "value": "{{ len .Alerts }}"},
                    ],
                    "actions": [
                        {
                            "type": "button",
                            "text": "Runbook :green_book:",
                            "url": "{{ (index .Alerts 0).Annotations.runbook_url }}",
                        },
                        {
                            "type": "button",
                            "text": "Silence",
                            "url": '{{ template "__alertmanagerURL" . }}',
                            "style": "danger",
                        },
                    ],
                }
            ]
        },
        alerts=[_alert("db-1:9100", severity="page"), _alert("db-2:9100")],
    ),
    Case(
        "slack.missing-keys",
        {
            "slack_configs": [
                {
                    "title": "{{ .CommonLabels.nonexistent }}|{{ .CommonAnnotations.summary }}|"
                    '{{ index .GroupLabels "missing" }}|{{ .Alerts.Firing | len }}|{{ len .Alerts.Resolved }}',
                    "text": "{{ range .Alerts.Firing }}{{ .Labels.alertname }}/{{ .Labels.nope }};{{ end }}"
                    "{{ range .Alerts.Resolved }}never{{ else }}no resolved{{ end }}"
                    "{{ with .CommonLabels.nope }}x{{ else }} none{{ end }}",
                }
            ]
        },
    ),
    Case(
        "slack.printing",
        {
            "slack_configs": [
                {
                    "title": "{{ (index .Alerts 0).StartsAt }} / {{ (index .Alerts 0).EndsAt }}",
                    "text": '{{ printf "%q %v %5.2f %x %-8s| %d %t" .Status .Receiver 3.14159 "hi" "ab" 42 true }}\n'
                    "{{ .Receiver }} {{ .Status }} {{ .ExternalURL }}\n"
                    "{{ (index .Alerts 0).Fingerprint }} {{ (index .Alerts 0).GeneratorURL }}\n"
                    "{{ .GroupLabels.SortedPairs.Names }} {{ .CommonLabels.Values }}\n"
                    '{{ stringSlice "a" "b" }} {{ len "héllo" }} {{ index "abc" 1 }} {{ slice "abcdef" 1 3 }}\n'
                    '{{ (.CommonLabels.Remove .GroupLabels.Names).Values | join " " }}\n'
                    '{{ 1.5 }} {{ 1e3 }} {{ 0x1F }} {{ \'a\' }} {{ print nil }} {{ print 1 2 "x" "y" 3 }}',
                }
            ]
        },
    ),
    Case(
        "slack.logic",
        {
            "slack_configs": [
                {
                    "title": "{{/* a comment */}}{{- $first := index .Alerts 0 -}}"
                    "{{ $first.Labels.instance }}  {{- /* trimmed */ -}}  !",
                    "text": '{{ if and (eq .Status "firing") (gt (len .Alerts) 1) }}many{{ else if eq .Status "firing" }}one'
                    "{{ else }}none{{ end }} "
                    '{{ or .CommonLabels.nope "fallback" }} {{ not .Alerts.Resolved }} '
                    '{{ eq .Status "resolved" "firing" }} {{ ne (len .Alerts) 3 }} {{ le 2 2 }} {{ lt 1.5 2.5 }} '
                    "{{ range $i, $a := .Alerts }}{{ if $i }}, {{ end }}{{ $i }}={{ $a.Labels.instance }}{{ end }} "
                    '{{ range $k, $v := .CommonLabels }}{{ $k }}:{{ $v }};{{ end }} {{ block "inline" . }}block {{ .Status }}{{ end }}',
                }
            ]
        },
        alerts=[_alert("db-1:9100"), _alert("db-2:9100")],
    ),
    Case(
        "slack.escapers",
        {
            "slack_configs": [
                {
                    "title": '{{ .CommonAnnotations.summary | html }} {{ js .CommonAnnotations.summary }} {{ urlquery .Receiver "a b&c" }}',
                    "text": '{{ .CommonAnnotations.summary | reReplaceAll "(\\\\d+)%" "$1 percent" }}\n'
                    '{{ reReplaceAll "^(\\\\w+)-(\\\\d+):.*$" "${2}/${1}" (index .Alerts 0).Labels.instance }}\n'
                    '{{ match "^Disk" .CommonLabels.alertname }} {{ match "x+" "yyy" }}\n'
                    '{{ title "hello wORLD of alerts" }} {{ toUpper "ünïcode" }} {{ toLower "ÀB" }}\n'
                    '{{ stringSlice "a" "b" "c" | join ", " }} {{ safeHtml "<b>" }}',
                }
            ]
        },
    ),
    Case(
        "slack.resolved-mixed",
        {
            "slack_configs": [
                {
                    "send_resolved": True,
                    "title": SLACK_TITLE,
                    "text": '{{ template "team.text" . }}',
                }
            ]
        },
        alerts=[_alert("db-1:9100"), _alert("db-2:9100")],
        resolve=["db-2:9100"],
    ),
    Case("email.default", {"email_configs": [{"send_resolved": True}]}, resolve=["db-1:9100"]),
    Case(
        "email.custom",
        {
            "email_configs": [
                {
                    "headers": {
                        "Subject": '{{ template "team.title" . }} \u2013 {{ .CommonAnnotations.summary }}'
                    },
                    "html": '{{ template "team.email.html" . }}',
                    "text": '{{ template "team.text" . }}',
                }
            ]
        },
        alerts=[_alert("db-1:9100", severity="page"), _alert("db-2:9100", severity="page")],
    ),
    Case("pagerduty.default", {"pagerduty_configs": [{"routing_key": "routing-key"}]}),
    Case(
        "pagerduty.custom",
        {
            "pagerduty_configs": [
                {
                    "routing_key": "routing-key",
                    "description": "{{ .CommonLabels.alertname }}: {{ .CommonAnnotations.summary }}",
                    "client": "opsmesh {{ .Receiver }}",
                    "client_url": "{{ .ExternalURL }}/#/alerts",
                    "severity": "{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}{{ else }}warning{{ end }}",
                    "class": "{{ .CommonLabels.job }}",
                    "component": "disk",
                    "group": "{{ .GroupLabels.alertname }}",
                    "details": {
                        "summary text": "{{ .CommonAnnotations.summary }} and more",
                        "instances": "{{ range .Alerts }}{{ .Labels.instance }} {{ end }}",
                    },
                    "links": [
                        {
                            "href": "{{ (index .Alerts 0).GeneratorURL }}",
                            "text": "Graph of {{ .GroupLabels.alertname }}",
                        }
                    ],
                    "images": [
                        {
                            "src": "https://grafana.example.com/render/{{ .GroupLabels.alertname }}.png",
                            "alt": "panel",
                        }
                    ],
                }
            ]
        },
        alerts=[_alert("db-1:9100", severity="critical"), _alert("db-2:9100", severity="critical")],
    ),
    Case(
        "opsgenie.default",
        {"opsgenie_configs": [{"api_key": "genie-key"}]},
        alerts=[_alert("db-1:9100"), _alert("db-2:9100")],
        resolve=["db-1:9100", "db-2:9100"],
    ),
    Case(
        "opsgenie.custom",
        {
            "opsgenie_configs": [
                {
                    "api_key": '{{ if eq .CommonLabels.job "node" }}genie-key{{ end }}',
                    "message": '{{ template "team.title" . }} {{ .CommonAnnotations.summary }}'
                    " and a long tail of words to pass the one hundred and thirty characters"
                    " that Opsgenie takes",
                    "description": '{{ template "team.text" . }}',
                    "source": "{{ .ExternalURL }}",
                    "details": {
                        "instances": "{{ range .Alerts }}{{ .Labels.instance }} {{ end }}",
                        "job": "overridden {{ .CommonLabels.job }}",
                    },
                    "entity": "{{ .GroupLabels.alertname }}",
                    "responders": [
                        {"name": "sre,{{ .CommonLabels.job }},", "type": "teams"},
                        {"username": "oncall@example.com", "type": "User"},
                        {
                            "id": "{{ .CommonLabels.nothing }}",
                            "type": "{{ .CommonLabels.nothing }}",
                        },
                        {"name": "{{ .CommonLabels.job }}-rota", "type": "schedule"},
                    ],
                    "actions": "restart, page-dba,,",
                    "tags": "{{ .CommonLabels.severity }},disk,{{ .CommonLabels.job }}",
                    "note": "first seen by {{ .Receiver }}",
                    "priority": '{{ if eq .CommonLabels.severity "critical" }}P1{{ end }}',
                    "update_alerts": True,
                }
            ]
        },
        alerts=[_alert("db-1:9100", severity="critical"), _alert("db-2:9100", severity="critical")],
    ),
]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def request_for(
    case: Case, alerts: list[dict[str, Any]], external_url: str
) -> NotificationRequested:
    built = []
    for a in alerts:
        labels = {**a["labels"], "case": case.name}
        resolved = "endsAt" in a
        built.append(
            Alert(
                fingerprint="-",
                status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                labels=labels,
                annotations=a["annotations"],
                starts_at=_epoch(a["startsAt"]),
                ends_at=_epoch(a["endsAt"]) if resolved else None,
                generator_url=a["generatorURL"],
            )
        )
    firing = any(a.status is AlertStatus.FIRING for a in built)
    return NotificationRequested(
        idempotency_key="k",
        receiver=case.name,
        group_key="g",
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        reason=NotifyReason.FIRST_NOTIFICATION,
        group_labels={"alertname": built[0].labels["alertname"], "case": case.name},
        alerts=built,
        external_url=external_url,
        requested_at=time.time(),
    )


@dataclass
class Run:
    am: Any  # conftest.Alertmanager
    phases: dict[str, list[list[dict[str, Any]]]]  # case -> the alerts of each notification


def _go_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def run(alertmanager_factory: Any) -> Run:
    receivers = [{"name": c.name, **c.receiver} for c in CASES]
    am = alertmanager_factory(receivers, {"corpus.tmpl": CORPUS_TMPL}, group_wait=GROUP_WAIT)
    starts = _go_time(time.time() - 1)
    fresh = {c.name: [{**a, "startsAt": starts} for a in c.alerts] for c in CASES}
    posted = []
    for case in CASES:
        for alert in fresh[case.name]:
            posted.append({**alert, "labels": {**alert["labels"], "case": case.name}})
    am.post(posted)
    am.wait([c.name for c in CASES], 1)
    phases = {c.name: [fresh[c.name]] for c in CASES}
    second = [c for c in CASES if c.resolve]
    ends = _go_time(time.time() - 0.5)  # after ``starts``: group_wait has passed since
    resolved_posts = []
    for case in second:
        after = []
        for posted_alert in fresh[case.name]:
            alert = posted_alert
            if alert["labels"]["instance"] in case.resolve:
                alert = {**alert, "endsAt": ends}
                resolved_posts.append({**alert, "labels": {**alert["labels"], "case": case.name}})
            after.append(alert)
        phases[case.name].append(after)
    am.post(resolved_posts)
    am.wait([c.name for c in second], 2)
    return Run(am, phases)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same ``templates:`` file, in a folder of its own (a glob, as configured)."""
    path = tmp_path_factory.mktemp("corpus")
    (path / "corpus.tmpl").write_text(CORPUS_TMPL)
    return path


@pytest.fixture
async def templates(
    renderer_binary: Path, corpus_dir: Path
) -> AsyncIterator[AlertmanagerTemplates]:
    renderer = GoRenderer(renderer_binary, workers=1)
    yield AlertmanagerTemplates(renderer, [str(corpus_dir / "*.tmpl")])
    await renderer.close()


def _config(case: Case, kind: str) -> Any:
    receiver = {"name": case.name, **case.receiver}
    for slack in receiver.get("slack_configs", []):
        slack.setdefault("api_url", "https://hooks.slack.example.com/x")
    for og in receiver.get("opsgenie_configs", []):
        og["api_url"] = "http://127.0.0.1/"  # the paths are compared relative to it
    for mail in receiver.get("email_configs", []):
        mail.update(to=[f"{case.name}@example.com"], smarthost="127.0.0.1:25")
        mail["from"] = "alertmanager@example.com"
    parsed = parse_receivers({"receivers": [receiver]})[case.name]
    return getattr(parsed, f"{kind}_configs")[0]


def _cases(kind: str) -> list[Any]:
    return [pytest.param(c, id=c.name) for c in CASES if c.name.startswith(kind)]


@pytest.mark.parametrize("case", _cases("slack"))
async def test_slack_message_is_alertmanagers(case: Case, run: Run, templates: Any) -> None:
    config = _config(case, "slack")
    sent = run.am.sink.bodies[case.name]
    assert len(sent) == len(run.phases[case.name])
    for alerts, theirs in zip(run.phases[case.name], sent, strict=True):
        request = request_for(case, alerts, run.am.external_url)
        ours = slack_message(config, await templates.render(request, slack_fields(config)))
        (our_attachment,) = ours.pop("attachments")
        (their_attachment,) = theirs.pop("attachments")
        for key in sorted(set(our_attachment) | set(their_attachment)):
            assert our_attachment.get(key) == their_attachment.get(key), (
                key,
                their_attachment.get(key),
            )
        assert ours == theirs


def _plain(part: Any) -> str:
    return part.get_content().replace("\r\n", "\n") if part is not None else ""


@pytest.mark.parametrize("case", _cases("email"))
async def test_email_is_alertmanagers(case: Case, run: Run, templates: Any) -> None:
    config = _config(case, "email")
    sent = run.am.sink.mails[case.name]
    assert len(sent) == len(run.phases[case.name])
    for alerts, theirs in zip(run.phases[case.name], sent, strict=True):
        request = request_for(case, alerts, run.am.external_url)
        rendered = await templates.render(request, email_fields(config))
        ours = build_am_message(config, request, rendered)
        assert ours["Subject"] == theirs["Subject"]
        their_html = _plain(theirs.get_body(("html",)))
        if case.name == "email.default":
            # Alertmanager 0.27 changed this one attribute of its default email.
            their_html = their_html.replace(
                'itemtype="http://schema.org/EmailMessage"',
                'itemtype="https://schema.org/EmailMessage"',
            )
            assert 'itemtype="https://schema.org/EmailMessage"' in rendered["html"]
        assert rendered["html"] == their_html
        assert _plain(ours.get_body(("html",))).rstrip("\n") == their_html.rstrip("\n")
        has_text = theirs.get_body(("plain",)) is not None
        assert bool(rendered["text"]) == has_text
        if has_text:
            assert rendered["text"] == _plain(theirs.get_body(("plain",)))


@pytest.mark.parametrize("case", _cases("pagerduty"))
async def test_pagerduty_event_is_alertmanagers(case: Case, run: Run, templates: Any) -> None:
    config = _config(case, "pagerduty")
    (theirs,) = run.am.sink.bodies[case.name]
    request = request_for(case, run.phases[case.name][0], run.am.external_url)
    rendered = await templates.render(request, pagerduty_fields(config))
    ours = am_event(request, routing_key="routing-key", rendered=rendered)
    for name in ("routing_key", "event_action", "client", "client_url", "links", "images"):
        assert ours.get(name) == theirs.get(name), name
    their_payload = dict(theirs["payload"])
    their_details = their_payload.pop("custom_details")
    our_payload = dict(ours["payload"])
    our_details = our_payload.pop("custom_details")
    assert our_payload == their_payload
    for name in config.details or {}:
        assert our_details[name] == their_details[name], name
    # 0.25 sent every detail as text; 0.28 and later parse YAML out of them.
    assert our_details["num_firing"] == int(their_details["num_firing"])
    assert our_details["num_resolved"] == int(their_details["num_resolved"])
    assert prefixed(rendered, "details.") == our_details


def _am_group_key(case: Case) -> str:
    """The group key Alertmanager gives the case's group (route ``case="<name>"`` under
    the root, grouped by alertname and case), printed as Alertmanager prints it."""
    return f'{{}}/{{case="{case.name}"}}:{{alertname="DiskAlmostFull", case="{case.name}"}}'


@pytest.mark.parametrize("case", _cases("opsgenie"))
async def test_opsgenie_requests_are_alertmanagers(case: Case, run: Run, templates: Any) -> None:
    config = _config(case, "opsgenie")
    calls_per_notification = 3 if config.update_alerts else 1
    run.am.wait([case.name], calls_per_notification * len(run.phases[case.name]))
    theirs = list(zip(run.am.sink.requests[case.name], run.am.sink.bodies[case.name], strict=True))
    ours = []
    for alerts in run.phases[case.name]:
        request = msgspec.structs.replace(
            request_for(case, alerts, run.am.external_url), group_key=_am_group_key(case)
        )
        rendered = await templates.render(request, opsgenie_fields(config))
        for call in api_calls(config, request, rendered):
            key = str(rendered.get("api_key", config.api_key.get_secret_value()))
            ours.append(
                ((call.method, f"/og/{case.name}/{call.path}", f"GenieKey {key}"), call.body)
            )
    assert len(ours) == len(theirs)
    for (our_request, our_body), (their_request, their_body) in zip(ours, theirs, strict=True):
        # The alias (the group key's SHA-256) and the paths built from it are Alertmanager's.
        assert our_request == their_request
        for key in sorted(set(our_body) | set(their_body)):
            assert our_body.get(key) == their_body.get(key), (key, their_body.get(key))
