"""The demo shop as `opsmesh up` runs it: its settings meet the demo rule it must trip,
and its load generator's requests make the incident the rule needs (and only then)."""

from __future__ import annotations

import random
from importlib import resources

import yaml
from examples.shop import load

from opsmesh_dev.tools.shop import REPOSITORY, shop_env


def test_the_shop_runs_in_the_environment_the_demo_rule_matches() -> None:
    rules = yaml.safe_load(
        (resources.files("opsmesh_dev.tools.resources") / "demo-rules.yml").read_text()
    )
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "HighErrorRate"]
    env = shop_env("dbname=shop", "127.0.0.1:9092")
    assert rule["signal"] == "http_error_ratio"
    assert rule["matchers"] == {"env": env["OPSMESH_ENVIRONMENT"]}
    assert (REPOSITORY / "examples" / "shop" / "__main__.py").is_file()


def failing_share(start_s: float, end_s: float) -> float:
    rng = random.Random(1)
    requested = [
        path
        for tick in range(int(start_s), int(end_s))
        for path in load.paths(tick, float(tick), rng)
    ]
    return sum(path == "/boom/" for path in requested) / len(requested)


def test_the_load_fails_a_share_of_requests_only_during_its_incidents() -> None:
    incident_from = load.HEALTHY_S
    incident_to = load.HEALTHY_S + load.INCIDENT_S
    assert failing_share(0, incident_from) == 0
    # Well above the demo rule's 5 %, in every cycle.
    assert failing_share(incident_from, incident_to) > 0.25
    later = load.CYCLE_S * 3
    assert failing_share(later + incident_from, later + incident_to) > 0.25
    assert failing_share(later + incident_to, later + load.CYCLE_S) == 0
