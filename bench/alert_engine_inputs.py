"""What alert-engine's input validation costs, and what RE2 buys (issue 10 items 1-3).

Pure CPU, no infrastructure: validating a posted alert, matching with RE2 against
Python's ``re``, a catastrophic pattern on both, and the worst regex compile the 1 MiB
bound allows. ``python -m bench.alert_engine_inputs``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from alert_engine.core.alerts import from_posted
from alert_engine.core.matchers import parse_matchers
from alert_engine.core.regex import RegexError, anchored
from alert_engine.core.validation import check_labels
from alert_engine.testing import PostedAlert


def per_call(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    now = time.time()
    alert = PostedAlert(
        labels={
            "alertname": "HighErrorRate",
            "service": "checkout",
            "instance": "10.0.3.17:9100",
            "job": "api",
            "severity": "page",
            "team": "payments",
        },
        annotations={"summary": "5xx above 2% for 5m", "runbook_url": "https://runbooks/x"},
        starts_at=datetime.fromtimestamp(now - 60, UTC),
        ends_at=None,
        generator_url="http://prometheus:9090/graph?g0.expr=rate(x)",
    )
    posting = per_call(lambda: from_posted(alert, now, 300.0, "f" * 16), 50_000)
    labels_only = per_call(lambda: check_labels("labels", alert.labels), 50_000)
    print(f"from_posted, 6 labels 2 annotations: {posting:.2f} us/alert")
    print(f"  of which check_labels:             {labels_only:.2f} us")

    value = "webserver-12.eu-west-1"
    for text in ('job=~"web.*"', 'job=~"api|web|db"', 'job=~"webserver-12.eu-west-1"'):
        (m,) = parse_matchers(text)
        pattern = re.compile(f"(?:{m.value})", re.S)
        ours = per_call(partial(m.matches, {"job": value}), 200_000)
        python = per_call(partial(pattern.fullmatch, value), 200_000)
        fresh = iter(range(10**9))
        cold = per_call(lambda: m.matches({"job": f"web-{next(fresh)}"}), 50_000)  # noqa: B023
        print(
            f"match {text:32} RE2 path {ours:.2f} us (new values {cold:.2f} us)"
            f"   Python re {python:.2f} us"
        )

    catastrophic = re.compile("(?:(a*)*b)", re.S)
    for n in (18, 20, 22, 24):
        spent = per_call(partial(catastrophic.fullmatch, "a" * n), 1)
        print(f"(a*)*b on {n:>6} a's: Python re {spent / 1e6:8.3f} s")
    matches = anchored("(a*)*b")
    for n in (1_000, 100_000, 1_000_000):
        spent = per_call(partial(matches, "a" * n), 3)
        print(f"(a*)*b on {n:>7} a's: RE2 {spent / 1e3:8.3f} ms")

    for worst in (r"\pL{1000}" * 8, ".{1000}" * 4, r"[^a]{1000}" * 8):
        started = time.perf_counter()
        try:
            anchored(worst)
            outcome = "compiled"
        except RegexError as exc:
            outcome = str(exc).split(":")[1].strip()
        print(f"compile {worst[:24]:26} {(time.perf_counter() - started) * 1e3:7.1f} ms  {outcome}")


if __name__ == "__main__":
    main()
