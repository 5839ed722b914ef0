"""Notifier templates under the budget: a hostile template is a RenderError naming the
budget (the request is dead-lettered, not retried), any runtime error of a template is a
RenderError too, and ordinary templates render as before."""

from __future__ import annotations

import pytest

from notifier.core.rendering import RenderError, render, render_named, template_data
from notifier.samples import sample_request

HOSTILE = [
    '{{ "x"|center(10**9) }}',
    '{{ "%*s"|format(10**9, "") }}',
    '{{ "x"|indent(10**9) }}',
    "{% for a in range(10**6) %}{% for b in range(10**6) %}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    '{% set x = "a" ~ "b" * 99999 %}{{ ((x ~ x) ~ x) ~ x }}',
    "{% macro f(n) %}{{ f(n + 1) }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    '{{ "x".ljust(10**9) }}',
    "{% for a in alerts %}{{ a.labels|string * 100000 }}{% endfor %}",
    "{{ (alerts * 100000)|tojson }}",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_are_render_errors_naming_the_budget(source: str) -> None:
    with pytest.raises(RenderError, match="template budget exceeded"):
        render(source, template_data(sample_request("ops")))


@pytest.mark.parametrize("source", ["{{ 1 / 0 }}", "{{ 'a' + 1 }}", '{{ [1, "a"]|sort }}'])
def test_runtime_errors_are_render_errors(source: str) -> None:
    with pytest.raises(RenderError, match="template failed"):
        render(source, template_data(sample_request("ops")))


def test_default_templates_still_render() -> None:
    data = template_data(sample_request("ops"))
    text = render_named(None, "slack_text.j2", data)
    assert "Disk <sda1> is 97% full & climbing" in text
    html = render_named(None, "email.html.j2", data, html=True)
    assert "Disk &lt;sda1&gt;" in html
