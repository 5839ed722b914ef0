"""A dashboard panel as data: its title, its PromQL queries with their legends and its unit
(``dashboards.dashboard`` turns a list of them into Grafana's JSON)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    description: str = ""


def p(title: str, expr: str, legend: str, unit: str = "short", description: str = "") -> Panel:
    return Panel(title, ((expr, legend),), unit, description)
