"""opsmesh-amtemplate: Alertmanager's functions newer than the Debian reference, the
budgets (time, memory, output), errors, and recovery after a killed render."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifier.amtemplate import AlertmanagerTemplates, Field, GoRenderer, TemplateError
from notifier.amtemplate.messages import template_data
from notifier.core.rendering import RenderError
from notifier.samples import sample_request
from opsmesh.events.alerts import AlertStatus

NOW = datetime(2024, 3, 10, 14, 40, tzinfo=UTC).timestamp()  # sample alerts start 10 min before


@pytest.fixture
async def renderer(renderer_binary: Path) -> AsyncIterator[GoRenderer]:
    renderer = GoRenderer(renderer_binary, workers=1, max_seconds=2.0, max_output=10_000)
    yield renderer
    await renderer.close()


async def one(templates: AlertmanagerTemplates, text: str, *, kind: str = "text") -> str:
    request = sample_request("team.a-b", now=NOW)
    out = await templates.render(request, [Field("x", text, kind)])
    return str(out["x"])


# Functions and methods of Alertmanager after 0.25 (the Debian binary cannot render them):
# expected values follow Alertmanager's documentation and Go's semantics.
NEWER = [
    (
        '{{ (index .Alerts 0).StartsAt | date "2006-01-02 15:04:05 MST" }}',
        "2024-03-10 14:30:00 UTC",
    ),
    (
        '{{ (index .Alerts 0).StartsAt | tz "Europe/Paris" | date "Mon 15:04 MST" }}',
        "Sun 15:30 CET",
    ),
    (
        '{{ (index .Alerts 0).StartsAt | tz "America/New_York" | date "15:04 -0700" }}',
        "10:30 -0400",
    ),
    ("{{ humanizeDuration 3725 }}", "1h 2m 5s"),
    ("{{ humanizeDuration 0.25 }}", "250ms"),
    ('{{ trimSpace "  padded \\n" }}|', "padded|"),
    ("{{ toJson .GroupLabels }}", '{"alertname":"DiskAlmostFull","service":"checkout"}'),
    ('{{ urlUnescape "a%20b%2Fc" }}', "a b/c"),
    ('{{ .GroupLabels.Names.Join "," }}', "alertname,service"),
    # Label sets print as "a=b, c=d" since 0.26 (0.25 printed map[a:b c:d]).
    ("{{ .GroupLabels }}", "alertname=DiskAlmostFull, service=checkout"),
    ("{{ .GroupLabels.SortedPairs }}", "alertname=DiskAlmostFull, service=checkout"),
    ('{{ (dict "a" 1 "b" "x").b }} {{ list 1 2 | len }}', "x 2"),
    ("{{ .NotificationReason }}", "first notification"),
    ("{{ .Receiver }}", "team\\.a-b"),  # regexp.QuoteMeta, as Alertmanager passes it
    ('{{ base64encode "a?b" }}', "YT9i"),
]


@pytest.mark.parametrize(("text", "expected"), NEWER, ids=[t for t, _ in NEWER])
async def test_newer_alertmanager_functions(renderer: GoRenderer, text: str, expected: str) -> None:
    assert await one(AlertmanagerTemplates(renderer), text) == expected


async def test_since_counts_from_the_renderers_clock(renderer: GoRenderer) -> None:
    # The sample alert started 10 minutes before NOW, which is years ago.
    out = await one(AlertmanagerTemplates(renderer), "{{ (index .Alerts 0).StartsAt | since }}")
    assert out.endswith("s")
    assert out.count("h") == 1  # e.g. "24000h12m3.4s"


async def test_html_fields_escape_by_context(renderer: GoRenderer) -> None:
    text = '<a href="{{ .CommonAnnotations.summary }}">{{ .CommonAnnotations.summary }}</a>'
    text += '<a href="{{ "javascript:alert(1)" }}">x</a>{{ safeHtml "<b>ok</b>" }}'
    out = await one(AlertmanagerTemplates(renderer), text, kind="html")
    assert out == (
        '<a href="Disk%20%3csda1%3e%20is%2097%25%20full%20&amp;%20climbing">'
        "Disk &lt;sda1&gt; is 97% full &amp; climbing</a>"
        '<a href="#ZgotmplZ">x</a><b>ok</b>'
    )


async def test_pagerduty_details_are_yaml_typed(renderer: GoRenderer) -> None:
    request = sample_request("r", now=NOW)
    value = {"n": "{{ len .Alerts }}", "list": "[a, b]", "text": "a: b c", "s": "x {{ .Status }}"}
    out = await AlertmanagerTemplates(renderer).render(request, [Field("d", value, "deep")])
    assert out["d"] == {"n": 1, "list": ["a", "b"], "text": {"a": "b c"}, "s": "x firing"}


async def test_firing_alerts_have_alertmanagers_zero_end(renderer: GoRenderer) -> None:
    templates = AlertmanagerTemplates(renderer)
    firing = await one(templates, "{{ (index .Alerts 0).EndsAt }}")
    assert firing == "0001-01-01 00:00:00 +0000 UTC"
    request = sample_request("r", now=NOW, status=AlertStatus.RESOLVED)
    out = await templates.render(
        request, [Field("x", "{{ .Status }} {{ (index .Alerts 0).EndsAt }}")]
    )
    assert out["x"] == "resolved 2024-03-10 14:40:00 +0000 UTC"


def test_template_data_carries_what_alertmanager_derives_from() -> None:
    request = sample_request("r", now=NOW)
    data = template_data(request)
    assert data["receiver"] == "r"
    assert data["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert data["alerts"][0]["startsAt"] == "2024-03-10T14:30:00Z"


async def test_template_errors_are_render_errors_naming_the_field(renderer: GoRenderer) -> None:
    templates = AlertmanagerTemplates(renderer)
    with pytest.raises(RenderError, match=r"template failed \(x\).*unclosed action"):
        await one(templates, "{{ .Status ")
    with pytest.raises(RenderError, match=r'template "nope" not defined'):
        await one(templates, '{{ template "nope" . }}')
    with pytest.raises(RenderError, match='function "nofunc" not defined'):
        await one(templates, "{{ nofunc }}")
    # reReplaceAll panics on a bad pattern (regexp.MustCompile): still just an error.
    with pytest.raises(RenderError, match="missing closing"):
        await one(templates, '{{ reReplaceAll "(" "x" "y" }}')
    assert renderer.restarts == 0  # none of these cost the process
    assert await one(templates, "{{ .Status }}") == "firing"


async def test_a_render_past_its_deadline_is_killed_and_the_next_one_works(
    renderer_binary: Path,
) -> None:
    renderer = GoRenderer(renderer_binary, workers=1, max_seconds=0.5)
    templates = AlertmanagerTemplates(renderer)
    try:
        with pytest.raises(RenderError, match="template budget exceeded: rendering took longer"):
            await one(templates, "{{ range 1000000000 }}{{ range 1000000000 }}{{ end }}{{ end }}")
        assert renderer.restarts == 1
        assert await one(templates, "{{ .Status }}") == "firing"
    finally:
        await renderer.close()


async def test_a_render_past_its_memory_ends_its_process_only(renderer_binary: Path) -> None:
    renderer = GoRenderer(renderer_binary, workers=1, max_seconds=20.0, max_memory_mb=64)
    templates = AlertmanagerTemplates(renderer)
    doubling = '{{ $a := "0123456789abcdef" }}{{ range 40 }}{{ $a = printf "%s%s" $a $a }}{{ end }}'
    try:
        with pytest.raises(RenderError, match="template budget exceeded: the render needed more"):
            await one(templates, doubling + "{{ len $a }}")
        assert await one(templates, "{{ .Status }}") == "firing"
    finally:
        await renderer.close()


async def test_output_above_the_budget_fails(renderer: GoRenderer) -> None:
    with pytest.raises(RenderError, match="template budget exceeded: output of 10001 bytes"):
        await one(AlertmanagerTemplates(renderer), '{{ printf "%10001s" "x" }}')


async def test_recursion_ends_at_go_templates_depth_limit(renderer: GoRenderer) -> None:
    with pytest.raises(RenderError, match="exceeded maximum template depth"):
        await one(
            AlertmanagerTemplates(renderer),
            '{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}',
        )


async def test_template_files_load_by_glob_and_a_broken_one_fails_the_check(
    renderer: GoRenderer, tmp_path: Path
) -> None:
    (tmp_path / "a.tmpl").write_text('{{ define "mine" }}mine {{ .Status }}{{ end }}')
    (tmp_path / ".hidden.tmpl").write_text('{{ define "hidden" }}hidden{{ end }}')
    good = AlertmanagerTemplates(
        renderer, [str(tmp_path / "*.tmpl"), str(tmp_path / "none/*.tmpl")]
    )
    await good.check()
    # Go's glob matches dot files, as Alertmanager's does.
    assert (
        await one(good, '{{ template "mine" . }}/{{ template "hidden" . }}') == "mine firing/hidden"
    )
    (tmp_path / "b.tmpl").write_text('{{ define "broken" }}{{ .Status {{ end }}')
    bad = AlertmanagerTemplates(renderer, [str(tmp_path / "*.tmpl")])
    with pytest.raises(TemplateError, match=r"b\.tmpl"):
        await bad.check()


async def test_concurrent_renders_use_every_worker(renderer_binary: Path) -> None:
    renderer = GoRenderer(renderer_binary, workers=2)
    templates = AlertmanagerTemplates(renderer)
    try:
        outs = await asyncio.gather(*(one(templates, f"{i} {{{{ .Status }}}}") for i in range(20)))
        assert outs == [f"{i} firing" for i in range(20)]
        assert len(renderer._all) == 2
    finally:
        await renderer.close()


async def test_a_closed_renderer_refuses(renderer: GoRenderer) -> None:
    await renderer.close()
    with pytest.raises(RuntimeError, match="closed"):
        await one(AlertmanagerTemplates(renderer), "x")


async def test_all_fields_together_have_a_budget_too(renderer: GoRenderer) -> None:
    fields = [Field(f"f{i}", '{{ printf "%9000s" "x" }}') for i in range(5)]
    with pytest.raises(RenderError, match="output of 45000 bytes in all, above 40000"):
        await AlertmanagerTemplates(renderer).render(sample_request("r", now=NOW), fields)


async def test_alertmanagers_default_email_of_a_large_group_fits_the_default_budget(
    renderer_binary: Path,
) -> None:
    import msgspec  # noqa: PLC0415

    from notifier.amtemplate.messages import email_fields  # noqa: PLC0415
    from notifier.receivers.config import EmailConfig  # noqa: PLC0415

    renderer = GoRenderer(renderer_binary, workers=1)
    one = sample_request("r", now=NOW)
    alerts = [
        msgspec.structs.replace(one.alerts[0], labels={**one.alerts[0].labels, "i": str(i)})
        for i in range(1000)
    ]
    config = EmailConfig(to=["a@example.com"], from_="b@example.com", smarthost="h:25")
    try:
        out = await AlertmanagerTemplates(renderer).render(
            msgspec.structs.replace(one, alerts=alerts), email_fields(config)
        )
        assert out["html"].count("DiskAlmostFull") >= 1000
        assert out["header.Subject"] == "[FIRING:1000] DiskAlmostFull checkout (db-1:9100 page)"
    finally:
        await renderer.close()


async def test_slack_actions_keep_their_confirm_as_alertmanagers_source_sends_it(
    renderer: GoRenderer,
) -> None:
    from notifier.amtemplate.messages import slack_fields, slack_message  # noqa: PLC0415
    from notifier.receivers.loading import parse_receivers  # noqa: PLC0415

    slack = {
        "api_url": "https://hooks.example.com/x",
        "actions": [
            {
                "type": "button",
                "text": "Silence",
                "url": "{{ .ExternalURL }}",
                "confirm": {"title": "Sure?", "text": "Silence {{ .GroupLabels.alertname }}"},
            }
        ],
        "fields": [{"title": "n", "value": "{{ len .Alerts }}"}, {"title": "", "value": "x"}],
        "short_fields": True,
    }
    config = parse_receivers({"receivers": [{"name": "r", "slack_configs": [slack]}]})[
        "r"
    ].slack_configs[0]
    rendered = await AlertmanagerTemplates(renderer).render(
        sample_request("r", now=NOW), slack_fields(config)
    )
    attachment = slack_message(config, rendered)["attachments"][0]
    assert attachment["actions"] == [
        {
            "type": "button",
            "text": "Silence",
            "url": "https://opsmesh.example.com/groups/checkout",
            "confirm": {"title": "Sure?", "text": "Silence DiskAlmostFull"},
        }
    ]
    assert attachment["fields"] == [
        {"title": "n", "value": "1", "short": True},
        {"value": "x", "short": True},
    ]
