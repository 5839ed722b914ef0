"""BoundedSandbox: hostile templates end with the budget's error, before they allocate;
ordinary templates render exactly as in Jinja's own sandbox; renders run off the loop."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from opsmesh.templating import (
    BUDGET_MESSAGE,
    BoundedSandbox,
    Budget,
    BudgetExceeded,
    render_off_loop,
    weight,
)

HOSTILE = [
    '{{ "x"|center(10**9) }}',
    '{{ "%*s"|format(10**9, "") }}',
    '{{ "%1000000000s"|format("") }}',
    '{{ "x"|indent(10**9) }}',
    '{{ "a\nb"|indent("x" * 99999, true) }}',
    "{% for a in range(10**6) %}{% for b in range(10**6) %}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    '{% set x = "a" ~ "b" * 99999 %}{{ ((x ~ x) ~ (x ~ x)) ~ x }}',
    '{% set x = "a" ~ "b" * 99999 %}{% set y = x ~ x %}{% set z = y ~ y %}{{ z ~ z }}',
    "{% macro f(n) %}{{ f(n + 1) }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}"
    "{{ f(0) }}",
    '{{ "x".ljust(10**9) }}',
    '{{ "x".rjust(10**9) }}',
    '{{ "x".center(10**9) }}',
    '{{ "x".zfill(10**9) }}',
    '{{ ("\t" * 99999).expandtabs(10**4) }}',
    '{{ "{:>1000000000}".format("x") }}',
    '{{ "{:{w}}".format("x", w=10**9) }}',
    '{{ "{:.1000000000f}".format(1.5) }}',
    '{{ "%1000000000s" % "" }}',
    '{{ "%.1000000000f" % 1.5 }}',
    '{{ "x" * 10**9 }}',
    "{{ [1] * 10**9 }}",
    "{{ 2 ** 100000 }}",
    "{{ ((10**64)**64)**64 }}",
    "{% set ns = namespace(n=10**64) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
    "{% endfor %}{{ ns.n }}",
    '{{ ("a" * 99999)|replace("a", "a" * 99999) }}',
    '{{ ("a" * 99999).replace("a", "aa") }}',
    '{{ "abc"|replace("", "x" * 99999) }}',
    '{{ (["x" * 99999] * 100000)|join }}',
    '{{ ("x" * 99999).join(["y"] * 1000) }}',
    '{{ (["x" * 99999] * 100000)|string }}',
    '{{ ["x" * 99999] * 100000 }}',
    '{{ ["x" * 50000] * 3 }}',
    '{{ (["x" * 99999] * 100000)|tojson }}',
    '{{ {"a": [[[[1]]]]}|tojson(indent=10**9) }}',
    '{{ (["x" * 99999] * 100000)|pprint }}',
    '{{ ("x" * 99999).translate({120: "yy"}) }}',
    '{{ "a"|wordwrap(1, wrapstring="x" * 99999) }}',
    '{{ ("a " * 49999)|wordwrap(1, wrapstring="x" * 99) }}',
    '{{ ("x " * 9999)|urlize(target="t" * 99999) }}',
    '{{ [1]|batch(10**9, "x")|list }}',
    "{{ [1]|slice(10**9)|list }}",
    "{{ ([[1] * 99999] * 99999)|sum(start=[]) }}",
    "{{ lipsum(10**6) }}",
    '{% set x %}{% for i in range(100000) %}{{ "x" * 999 }}{% endfor %}{% endset %}{{ x }}',
    '{% for i in range(100000) %}{{ "x" * 999 }}{% endfor %}',
    "{% for x in [1] recursive %}{{ loop(range(100000)) }}{% endfor %}",
    '{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ["x"] %}'
    "{% endfor %}",
    "{% for i in range(1000) %}{{ range(100000)|map('string')|list|length }}{% endfor %}",
    "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
    "{% endfor %}{{ ns.x }}",
    '{{ ("x" * 99999)|attr("center")(10**9) }}',
    '{{ ("{:>1000000000}")|attr("format")("x") }}',
    '{{ ("{0:>99999}" * 100)|attr("format")("x") }}',
]


@pytest.fixture(scope="module")
def env() -> BoundedSandbox:
    return BoundedSandbox(undefined=StrictUndefined, budget=Budget(max_size=100_000))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_stop_with_the_budget_error(env: BoundedSandbox, source: str) -> None:
    with pytest.raises(BudgetExceeded) as info:
        env.from_string(source).render()
    assert str(info.value).startswith(BUDGET_MESSAGE + ": ")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_allocate_a_bounded_amount(env: BoundedSandbox, source: str) -> None:
    """Refused before building: a render's peak allocation stays a small multiple of the
    size budget (100k characters) whatever the expression asks for."""
    template = env.from_string(source)
    tracemalloc.start()
    try:
        with pytest.raises(BudgetExceeded):
            template.render()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024


def test_the_step_budget_stops_a_long_loop() -> None:
    env = BoundedSandbox(budget=Budget(max_steps=1000))
    assert env.from_string("{% for i in range(990) %}{% endfor %}ok").render() == "ok"
    with pytest.raises(BudgetExceeded, match="more than 1000 steps"):
        env.from_string("{% for i in range(1001) %}{% endfor %}").render()


def test_steps_count_across_the_whole_render() -> None:
    env = BoundedSandbox(budget=Budget(max_steps=1000))
    loops = "{% for i in range(600) %}{% endfor %}"
    env.from_string(loops).render()
    with pytest.raises(BudgetExceeded, match="steps"):
        env.from_string(loops + loops).render()


def test_lazy_filters_count_their_items_as_steps() -> None:
    env = BoundedSandbox(budget=Budget(max_steps=1000))
    with pytest.raises(BudgetExceeded, match="steps"):
        env.from_string("{{ range(5000)|map('string')|list|length }}").render()


class SteppedClock:
    """Each reading is a second later than the last: any render that checks the clock
    twice past its start is over a 1.5 s budget."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_the_time_budget_is_checked_at_each_step() -> None:
    env = BoundedSandbox(budget=Budget(max_seconds=1.5), clock=SteppedClock())
    assert env.from_string("no steps at all").render() == "no steps at all"
    with pytest.raises(BudgetExceeded, match=r"longer than 1\.5 s"):
        env.from_string("{% for i in range(3) %}{{ i }}{% endfor %}").render()


def test_the_size_budget_bounds_output_and_buffers() -> None:
    env = BoundedSandbox(budget=Budget(max_size=100))
    assert env.from_string('{{ "x" * 100 }}').render() == "x" * 100
    with pytest.raises(BudgetExceeded, match="above 100"):
        env.from_string("{% for i in range(101) %}x{% endfor %}").render()
    with pytest.raises(BudgetExceeded, match="above 100"):
        env.from_string("{% set b %}{% for i in range(101) %}x{% endfor %}{% endset %}").render()


def test_data_is_never_compiled_as_a_template(env: BoundedSandbox) -> None:
    bomb = '{{ "x"|center(10**9) }}'
    out = env.from_string("{{ note }}|{{ note|upper }}").render(note=bomb)
    assert out == bomb + "|" + bomb.upper()


ORDINARY = [
    ("{{ labels.host }} is {{ value|round(2) }}", {"labels": {"host": "db1"}, "value": 0.987}),
    (
        "{% for a in alerts %}{{ a.labels|dictsort|map('join', '=')|join(', ') }}\n{% endfor %}",
        {"alerts": [{"labels": {"b": "2", "a": "1"}}, {"labels": {"c": "3"}}]},
    ),
    ('{{ "%s: %d%%"|format(name, 42) }} {{ "{}-{}".format(1, "x") }}', {"name": "cpu"}),
    (
        "{{ text|wordwrap(10) }}|{{ text|center(40) }}|{{ text|indent(2, true) }}",
        {"text": "a " * 20},
    ),
    ("{{ items|join(', ') }} {{ items|sum }} {{ items|tojson }} {{ items }}", {"items": [1, 2, 3]}),
    ('{{ "a" ~ 1 ~ none }} {{ ("ab" * 3)|replace("b", "c") }} {{ "x".ljust(4) }}|', {}),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m('y') }}", {}),
    ("{% for x in [[1, [2]], 3] recursive %}{{ loop(x) if x is iterable else x }}{% endfor %}", {}),
    ("{{ lipsum(2, false, 5, 10)|length > 0 }} {{ range(3)|list }} {{ [1, 2]|batch(1)|list }}", {}),
    ("{{ d|pprint }} {{ d|tojson(2) }} {{ 'x' in d }} {{ d.x|e }}", {"d": {"x": "<b>"}}),
]


@pytest.mark.parametrize(("source", "data"), ORDINARY)
def test_ordinary_templates_render_as_in_jinjas_sandbox(source: str, data: dict[str, Any]) -> None:
    plain = ImmutableSandboxedEnvironment().from_string(source).render(data)
    if "lipsum" not in source:
        assert BoundedSandbox().from_string(source).render(data) == plain
    else:
        assert BoundedSandbox().from_string(source).render(data).startswith("True [0, 1, 2]")


def test_the_sandbox_still_refuses_python_internals() -> None:
    with pytest.raises(SecurityError, match="unsafe"):
        BoundedSandbox().from_string("{{ ''.__class__.__mro__ }}").render()


def test_weight_counts_shared_references_and_stops_early() -> None:
    big = "x" * 1000
    assert weight(big, 10**6) == 1000
    assert weight([big] * 100, 10**6) >= 100_000
    assert weight([big] * 10**6, 5000) <= 5000 + 1000 + 2 * 10**6 + 2
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    assert weight(nested, 1000) > 1000  # deep nesting: no RecursionError


# -- off the event loop ------------------------------------------------------------


async def test_the_event_loop_runs_while_a_template_renders() -> None:
    """The render waits for a signal only the event loop can give: it finishes only if
    the loop kept running during the render."""
    env = BoundedSandbox()
    ticked = threading.Event()

    def gate() -> str:
        return "loop ran" if ticked.wait(timeout=10) else "loop blocked"

    template = env.from_string("{% for i in range(50000) %}{% endfor %}{{ gate() }}")
    render = asyncio.ensure_future(render_off_loop(template.render, gate=gate))
    ticks = 0
    while not render.done() and ticks < 3:
        await asyncio.sleep(0)  # a concurrent task taking turns on the loop
        ticks += 1
    ticked.set()
    assert await render == "loop ran"
    assert ticks == 3


async def test_a_budget_error_reaches_the_awaiting_task() -> None:
    template = BoundedSandbox().from_string('{{ "x"|center(10**9) }}')
    with pytest.raises(BudgetExceeded):
        await render_off_loop(template.render)


# -- property: a grammar of size-producing expressions -------------------------------

SMALL = Budget(max_size=5_000, max_steps=20_000, max_seconds=30.0)
_NUMBERS = st.sampled_from(["0", "1", "3", "7", "40", "999", "4999", "5001", "10**4", "10**9"])


def _strings(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    n = _NUMBERS
    lists = st.builds(lambda a, b: f"[{a}, {b}]", children, children) | st.builds(
        lambda a, k: f"([{a}] * {k})", children, n
    )
    return st.one_of(
        st.builds(lambda s, k: f"({s})|center({k})", children, n),
        st.builds(lambda s, k: f"({s})|indent({k}, true)", children, n),
        st.builds(lambda s, k: f'"%*s"|format({k}, {s})', children, n),
        st.builds(lambda s, k: f'("%" ~ ({k}) ~ "s") % ({s},)', children, n),
        st.builds(lambda s, w: f"({s})|wordwrap(1, wrapstring={w})", children, children),
        st.builds(lambda s, r: f'({s})|replace("a", {r})', children, children),
        st.builds(lambda s, r: f'({s})|replace("", {r})', children, children),
        st.builds(lambda xs, d: f"({xs})|join({d})", lists, children),
        st.builds(lambda xs: f"({xs})|string", lists),
        st.builds(lambda xs: f"({xs})|tojson", lists),
        st.builds(lambda a, b: f"({a} ~ {b})", children, children),
        st.builds(lambda a, b: f"({a} + {b})", children, children),
        st.builds(lambda s, k: f"({s} * {k})", children, n),
        st.builds(
            lambda s, k, m: f"({s}).{m}({k})",
            children,
            n,
            st.sampled_from(["ljust", "rjust", "center", "zfill", "expandtabs"]),
        ),
        st.builds(lambda s, k: f'"{{:>{{w}}}}".format({s}, w={k})', children, n),
        st.builds(lambda s, r: f'({s}).replace("b", {r})', children, children),
        st.builds(lambda xs, d: f"({d}).join({xs})", lists, children),
    )


EXPRESSIONS = st.recursive(
    st.sampled_from(['"a"', '"ab\\tb"', '"a b\\nab"', '""']), _strings, max_leaves=6
)


@pytest.mark.timeout(120)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_size_producing_expressions_render_within_bounds_or_stop(expression: str) -> None:
    env = _small_env()
    template = env.from_string("{{ " + expression + " }}")
    tracemalloc.start()
    try:
        out = template.render()
    except BudgetExceeded as exc:
        out = str(exc)
        assert out.startswith(BUDGET_MESSAGE)
    else:
        assert len(out) <= SMALL.max_size
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # Bounded while rendering, not after: nothing near what an expression asks for.
    assert peak < 4 * 1024 * 1024, expression


_ENV: list[BoundedSandbox] = []


def _small_env() -> BoundedSandbox:
    if not _ENV:
        _ENV.append(BoundedSandbox(budget=SMALL))
    return _ENV[0]


@pytest.fixture(autouse=True)
def _no_leftover_tracing() -> Iterator[None]:
    yield
    if tracemalloc.is_tracing():
        tracemalloc.stop()
