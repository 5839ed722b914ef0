"""The quantile sketch: relative accuracy, merging equals sketching together, round trip."""

from __future__ import annotations

import json
import random

import pytest

from query_analyzer.core.regression import RegressionRules, RegressionVerdict, assess
from query_analyzer.core.sketch import RELATIVE_ACCURACY, Sketch, SketchFormatError


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantiles_are_within_the_relative_accuracy(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]
    sketch = Sketch()
    for v in values:
        sketch.add(v)
    estimate = sketch.quantile(q)
    assert estimate is not None
    assert abs(estimate - _exact(values, q)) <= RELATIVE_ACCURACY * _exact(values, q) * 1.0001


def test_merged_windows_equal_one_sketch_of_everything() -> None:
    rng = random.Random(3)
    together, first, second = Sketch(), Sketch(), Sketch()
    for i in range(5_000):
        v = rng.expovariate(1 / 40)
        together.add(v)
        (first if i % 3 else second).add(v)
    first.merge(Sketch.from_json(second.to_json()))
    assert first.count == together.count
    assert first.buckets == together.buckets
    assert first.quantile(0.95) == together.quantile(0.95)


def test_empty_and_zero_values() -> None:
    sketch = Sketch()
    assert sketch.quantile(0.5) is None
    sketch.add(0.0)
    assert sketch.quantile(0.5) == 0.0
    with pytest.raises(ValueError, match="quantile"):
        sketch.quantile(1.5)


def test_a_sketch_of_another_accuracy_is_refused() -> None:
    with pytest.raises(SketchFormatError, match="accuracy"):
        Sketch.from_json({"accuracy": 0.05, "buckets": {}})


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        [1, 2],
        None,
        {"accuracy": RELATIVE_ACCURACY, "buckets": []},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"x": 1}},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"3": -1}},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"3": "1"}},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"3": True}},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"99999999": 1}},
        {"accuracy": RELATIVE_ACCURACY, "zeros": 1.5, "buckets": {}},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {str(k): 1 for k in range(5000)}},
    ],
)
def test_a_damaged_stored_sketch_is_a_named_error(stored: object) -> None:
    with pytest.raises(SketchFormatError):
        Sketch.from_json(stored)
    if not isinstance(stored, str):  # and as the JSON text PostgreSQL hands back
        with pytest.raises(SketchFormatError):
            Sketch.from_json(json.dumps(stored))


@pytest.mark.parametrize(
    "stored",
    [
        {"accuracy": RELATIVE_ACCURACY, "zeros": 2, "buckets": {"3": 1, "-40": 5}},
        {"accuracy": RELATIVE_ACCURACY},
        # Read as before the msgspec path: what int() and the checks accept stands.
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"+4": 2, " 7": 1, "08": 3}},
        {"accuracy": RELATIVE_ACCURACY, "zeros": 2**70, "buckets": {"1": 2**65}},
        {"accuracy": RELATIVE_ACCURACY, "buckets": {"-0": 1}, "other": [1]},
    ],
)
def test_stored_text_reads_as_the_object_does(stored: dict[str, object]) -> None:
    from_text, from_object = Sketch.from_json(json.dumps(stored)), Sketch.from_json(stored)
    assert (from_text.count, from_text.zeros, from_text.buckets) == (
        from_object.count,
        from_object.zeros,
        from_object.buckets,
    )


def test_the_encoded_sketch_is_its_json_form() -> None:
    sketch = _sketch([0.0, 1.0, 20.0, 20.5, 300.0])
    assert json.loads(sketch.to_json_bytes()) == sketch.to_json()
    again = Sketch.from_json(sketch.to_json_bytes())
    assert (again.count, again.zeros, again.buckets) == (5, 1, sketch.buckets)


def test_a_stored_sketch_reads_back_from_json_text() -> None:
    sketch = _sketch([1.0, 20.0, 300.0])
    again = Sketch.from_json(json.dumps(sketch.to_json()))
    assert (again.count, again.buckets) == (3, sketch.buckets)
    assert again.quantile(0.99) == sketch.quantile(0.99)


def _sketch(values: list[float]) -> Sketch:
    s = Sketch()
    for v in values:
        s.add(v)
    return s


def test_regression_verdicts() -> None:
    baseline = _sketch([20.0] * 100)
    assert assess(_sketch([80.0] * 50), baseline).verdict is RegressionVerdict.REGRESSED
    assert assess(_sketch([25.0] * 50), baseline).verdict is RegressionVerdict.STEADY
    assert assess(_sketch([80.0] * 5), baseline).verdict is RegressionVerdict.TOO_FEW_CALLS_NOW
    assert assess(_sketch([80.0] * 50), _sketch([1.0])).verdict is RegressionVerdict.NO_BASELINE
    # Doubling from 1 ms to 3 ms is not worth a page.
    small = assess(_sketch([3.0] * 50), _sketch([1.0] * 50), RegressionRules())
    assert small.verdict is RegressionVerdict.STEADY
