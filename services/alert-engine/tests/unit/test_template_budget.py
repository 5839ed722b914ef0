"""Rule templates under a budget: a hostile label or annotation renders the budget's error
instead of an alert's text (and never stalls evaluation), and evaluation runs in the
render threads, off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.amconfig import default_config
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator, Transition
from alert_engine.core.rules import Comparison, Rule
from alert_engine.core.silences import Silences
from alert_engine.core.templating import BUDGET, render
from alert_engine.pipeline.state import EngineState, Stores
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.consumer import Received
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0

HOSTILE = [
    '{{ "x"|center(10**9) }}',
    '{{ "%*s"|format(10**9, "") }}',
    '{{ "x"|indent(10**9) }}',
    "{% for a in range(10**6) %}{% for b in range(10**6) %}{% endfor %}{% endfor %}",
    "{% for a in range(60000) %}{% for b in range(60000) %}{% endfor %}{% endfor %}",
    '{% set x = "a" ~ "b" * 60000 %}{{ ((x ~ x) ~ x) ~ x }}',
    "{% macro f(n) %}{{ f(n + 1) }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}"
    "{{ f(0) }}",
    '{{ "x".ljust(10**9) }}',
    "{{ labels.host * 10**9 }}",
]


def rule(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "name": "CpuHot",
        "signal": "cpu",
        "op": Comparison.GT,
        "threshold": 0.9,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def signal(value: float = 0.95) -> SignalObserved:
    return SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name="cpu",
        subject="cpu",
        labels={"host": "a"},
        value=value,
        stats={},
        observed_at=T0,
    )


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_annotations_render_the_budget_error(source: str) -> None:
    ev = Evaluator([rule(annotations={"x": source, "fine": "{{ labels.host }}"})])
    (t,) = ev.observe(signal(), T0)
    assert t.alert.state is AlertState.FIRING
    assert t.alert.annotations["x"].startswith("<template error: template budget exceeded: ")
    assert t.alert.annotations["fine"] == "a"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_labels_render_the_budget_error(source: str) -> None:
    ev = Evaluator([rule(labels={"team": source})])
    (t,) = ev.observe(signal(), T0)
    assert t.alert.labels["team"].startswith("<template error: template budget exceeded: ")


def test_a_heavy_but_allowed_template_renders() -> None:
    steps = BUDGET.max_steps // 2
    out = render(f"{{% for i in range({steps}) %}}{{% endfor %}}done", {}, None)
    assert out == "done"


class SpyEvaluator(Evaluator):
    def __init__(self, rules: Sequence[Rule]) -> None:
        super().__init__(rules)
        self.threads: list[str] = []

    def observe(self, event: SignalObserved, now: float, trace: str = "") -> list[Transition]:
        self.threads.append(threading.current_thread().name)
        return super().observe(event, now, trace)


async def test_rules_are_evaluated_in_a_render_thread() -> None:
    """Under the engine lock, but off the event loop (API, heartbeats, other consumers
    keep running while a heavy template renders)."""
    evaluator = SpyEvaluator([rule(annotations={"v": "{{ value }}"})])
    unused: Any = None  # evaluating reads no store and sends nothing (``write_rules`` does)
    state = EngineState(
        engine=Engine(default_config(), ActiveAlerts(), Silences()),
        evaluator=evaluator,
        stores=Stores(unused, unused, unused, unused, unused),
        producer=unused,
        limiter=unused,
        clock=FakeClock(T0),
        registry=CollectorRegistry(),
        external_url="http://engine",
    )
    work = await state.evaluate([Received(signal(), message=None)])
    assert evaluator.threads
    assert all(name.startswith("opsmesh-render") for name in evaluator.threads)
    assert [t.alert.annotations["v"] for t in work.transitions] == ["0.95"]
