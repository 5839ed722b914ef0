"""Renders per second of Alertmanager templates through ``opsmesh-amtemplate``.

One "render" is everything one notification of an integration needs (one pipe round
trip): Slack's 14 attachment fields, email's headers + HTML (+ empty text), PagerDuty's
description, client fields and four default details, all from Alertmanager's
``default.tmpl``/``email.tmpl``; and a single ``{{ .Status }}`` field, which is the round
trip's own cost. Measured for a group of 1 and of 100 alerts, one request at a time (the
latency a notification pays) and 8 in flight over the renderer's processes (throughput).

    uv run python -m bench.amtemplates [--seconds S] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import msgspec
from pydantic import SecretStr

from notifier.amtemplate import AlertmanagerTemplates, Field, GoRenderer
from notifier.amtemplate.build import build
from notifier.amtemplate.messages import email_fields, pagerduty_fields, slack_fields
from notifier.receivers.config import EmailConfig, PagerDutyConfig, SlackConfig
from notifier.samples import sample_request
from opsmesh.events.notifications import NotificationRequested

KINDS: dict[str, list[Field]] = {
    "one field ({{ .Status }})": [Field("x", "{{ .Status }}")],
    "slack (defaults)": slack_fields(SlackConfig(api_url=SecretStr("https://hooks.example.com/x"))),
    "email (defaults, HTML)": email_fields(
        EmailConfig(to=["a@example.com"], from_="am@example.com", smarthost="mail.example.com:25")
    ),
    "pagerduty (defaults)": pagerduty_fields(PagerDutyConfig(routing_key=SecretStr("key"))),
}


def _request(alerts: int) -> NotificationRequested:
    one = sample_request("ops")
    many = [
        msgspec.structs.replace(
            one.alerts[0], labels={**one.alerts[0].labels, "instance": f"db-{i}:9100"}
        )
        for i in range(alerts)
    ]
    return msgspec.structs.replace(one, alerts=many)


async def _rate(
    templates: AlertmanagerTemplates,
    request: NotificationRequested,
    fields: list[Field],
    seconds: float,
    in_flight: int,
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await templates.render(request, fields)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return done / (time.perf_counter() - started)


async def run(seconds: float, workers: int) -> None:
    renderer = GoRenderer(build(), workers=workers)
    templates = AlertmanagerTemplates(renderer)
    await templates.check()
    print(f"renderer processes: {workers}; {seconds} s per figure")
    print(f"{'what':32} {'alerts':>6} {'1 at a time':>14} {'8 in flight':>14}")
    try:
        for alerts in (1, 100):
            request = _request(alerts)
            for name, fields in KINDS.items():
                await templates.render(request, fields)  # warm: the set is loaded
                serial = await _rate(templates, request, fields, seconds, 1)
                parallel = await _rate(templates, request, fields, seconds, 8)
                print(
                    f"{name:32} {alerts:>6} {serial:>9.0f} r/s {parallel:>9.0f} r/s"
                    f"   ({1e3 / serial:.2f} ms each)"
                )
    finally:
        await renderer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    asyncio.run(run(args.seconds, args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
