"""What the template budget costs per render, and what moving a render off the loop costs.

Renders the notifier's default templates (Slack title + text, email subject + text +
HTML, PagerDuty summary) for a sample group of 1 and of 100 alerts, and an alert-engine
label/annotation template, in Jinja's own ``ImmutableSandboxedEnvironment`` (the
baseline) and in ``BoundedSandbox`` (budget on), and times ``render_off_loop``'s thread
hop for an empty call.

    uv run python -m bench.templates [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notifier.core.rendering import _Alerts, default_template, template_data
from notifier.samples import sample_request
from opsmesh.templating import BoundedSandbox, render_off_loop

NOTIFIER_TEMPLATES = [
    ("slack_title.j2", False),
    ("slack_text.j2", False),
    ("email_subject.j2", False),
    ("email.txt.j2", False),
    ("email.html.j2", True),
    ("pagerduty_summary.j2", False),
]
RULE_TEMPLATE = "{{ labels.service }} on {{ labels.instance }} is at {{ value | round(2) }}"


def _per_call_us(fn: Callable[[], object], repeat: int) -> float:
    best = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        best.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(best)


def _data(alerts: int) -> dict[str, Any]:
    request = sample_request("ops")
    many = msgspec.structs.replace(request, alerts=request.alerts * alerts)
    data = template_data(many)
    data["alerts"] = _Alerts(data["alerts"])
    return data


def _compile_all(html_env: Any, text_env: Any) -> list[Template]:
    return [
        (html_env if html else text_env).from_string(default_template(name))
        for name, html in NOTIFIER_TEMPLATES
    ]


def _render_all(templates: list[Template], data: dict[str, Any]) -> Callable[[], object]:
    return lambda: [t.render(data) for t in templates]


async def _hop_us(repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        await render_off_loop(int)
    return (time.perf_counter() - started) / repeat * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args(argv)
    plain = (
        ImmutableSandboxedEnvironment(autoescape=True),
        ImmutableSandboxedEnvironment(autoescape=False),
    )
    bounded = (BoundedSandbox(autoescape=True), BoundedSandbox(autoescape=False))
    print("notifier default templates, all six per notification (µs per notification):")
    for alerts in (1, 100):
        data = _data(alerts)
        rows = []
        for label, (html_env, text_env) in (("jinja sandbox", plain), ("bounded", bounded)):
            cost = _per_call_us(
                _render_all(_compile_all(html_env, text_env), data),
                max(10, args.repeat // alerts),
            )
            rows.append(cost)
            print(f"  {alerts:>3} alert(s)  {label:<14} {cost:10.1f}")
        print(f"  {alerts:>3} alert(s)  overhead       {rows[1] / rows[0]:10.2f}x")
    labels = {"service": "checkout", "instance": "db-1:9100"}
    rule_plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined).from_string(RULE_TEMPLATE)
    rule_bounded = BoundedSandbox(undefined=StrictUndefined).from_string(RULE_TEMPLATE)
    repeat = args.repeat * 20
    base = _per_call_us(lambda: rule_plain.render(labels=labels, value=0.97), repeat)
    ours = _per_call_us(lambda: rule_bounded.render(labels=labels, value=0.97), repeat)
    print("alert-engine rule template (µs per render):")
    print(f"  jinja sandbox {base:8.2f}   bounded {ours:8.2f}   overhead {ours / base:.2f}x")
    hop = asyncio.run(_hop_us(args.repeat * 10))
    print(f"render_off_loop thread hop, empty call: {hop:.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
