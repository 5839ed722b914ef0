"""N+1 detection on crafted span trees, at and around Sentry's thresholds (5 repeats, 50 ms)."""

from __future__ import annotations

from query_analyzer.core.nplusone import NPlusOneRules, QuerySpan, detect

_counter = iter(range(10**6))


def span(
    fp: str,
    ms: float,
    *,
    parent: str = "p1",
    trace: str = "t1",
    display: str | None = None,
    truncated: bool = False,
) -> QuerySpan:
    n = next(_counter)
    return QuerySpan(
        trace_id=trace,
        span_id=f"s{n}",
        parent_span_id=parent,
        fingerprint=fp,
        display=display or f"SELECT * FROM {fp} WHERE id = $1",
        duration_ms=ms,
        started_at=float(n),
        truncated=truncated,
    )


def test_source_then_five_repeats_over_50ms_is_an_n_plus_one() -> None:
    spans = [span("posts", 5), *(span("authors", 10) for _ in range(5))]
    [found] = detect(spans)
    assert found.repeats == 5
    assert found.total_ms == 50
    assert found.source_fingerprint == "posts"
    assert found.repeated_fingerprint == "authors"
    assert len(found.offender_span_ids) == 5


def test_four_repeats_are_not_enough() -> None:
    assert detect([span("posts", 5), *(span("authors", 20) for _ in range(4))]) == []


def test_repeats_under_50ms_in_total_are_not_reported() -> None:
    assert detect([span("posts", 5), *(span("authors", 9.9) for _ in range(5))]) == []


def test_without_a_distinct_source_query_there_is_no_n_plus_one() -> None:
    # Six identical queries and nothing before them: no source span.
    assert detect([span("authors", 20) for _ in range(6)]) == []


def test_repeats_under_different_parents_do_not_add_up() -> None:
    spans = [span("posts", 5, parent="a")]
    spans += [span("authors", 20, parent="a") for _ in range(3)]
    spans += [span("authors", 20, parent="b") for _ in range(3)]
    assert detect(spans) == []


def test_truncated_sql_is_never_reported() -> None:
    spans = [span("posts", 5), *(span("authors", 20, truncated=True) for _ in range(5))]
    assert detect(spans) == []


def test_same_fingerprint_but_different_text_breaks_the_run() -> None:
    spans = [span("posts", 5)]
    spans += [span("authors", 20, display="SELECT a FROM authors WHERE id = $1") for _ in range(3)]
    spans += [span("authors", 20, display="SELECT b FROM authors WHERE id = $1") for _ in range(3)]
    assert detect(spans) == []


def test_a_run_can_be_the_source_of_the_next_run_and_traces_are_separate() -> None:
    spans = [span("a", 1), span("b", 1)]
    spans += [span("c", 12) for _ in range(5)]
    spans += [span("posts", 5, trace="t2"), *(span("authors", 11, trace="t2") for _ in range(6))]
    found = sorted(detect(spans), key=lambda f: f.trace_id)
    assert [(f.trace_id, f.source_fingerprint, f.repeats) for f in found] == [
        ("t1", "b", 5),
        ("t2", "posts", 6),
    ]
    assert found[0].key != found[1].key


def test_thresholds_are_configurable() -> None:
    spans = [span("posts", 5), *(span("authors", 1) for _ in range(3))]
    assert detect(spans, NPlusOneRules(min_repeats=3, min_total_ms=3)) != []


def test_a_parent_with_just_enough_spans_for_the_rules_is_read() -> None:
    rules = NPlusOneRules(min_repeats=2, min_total_ms=10)
    [found] = detect([span("posts", 5), span("authors", 5), span("authors", 5)], rules)
    assert found.repeats == 2
    assert detect([span("posts", 5), span("authors", 50)], rules) == []
