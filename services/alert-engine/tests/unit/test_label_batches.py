"""The batch fingerprints (numpy) agree with opsmesh.labels' one-by-one loop."""

from __future__ import annotations

import pytest

from alert_engine.label_batches import fingerprints
from opsmesh.labels import fingerprint


def test_batch_fingerprints_equal_one_by_one() -> None:
    # Lengths vary (the batch path orders inputs by length), values repeat, one set is
    # empty, and multi-byte UTF-8 appears: every case the per-byte loop covers.
    sets: list[dict[str, str]] = [{}]
    for i in range(300):
        labels = {"alertname": f"A{i % 7}", "instance": "h" * (i % 23), "n": str(i)}
        if i % 5 == 0:
            labels["zone"] = "été-" + str(i)
        sets.append(labels)
    sets.append({"name": "garland, briggs", "fear": "love is not enough"})
    assert fingerprints(sets) == [fingerprint(s) for s in sets]
    assert int(fingerprints(sets)[-1], 16) == 5799056148416392346


def test_small_batches_take_the_loop() -> None:
    sets = [{"a": "1"}, {"a": "2"}]
    assert fingerprints(sets) == [fingerprint(s) for s in sets]
    assert fingerprints([]) == []


def test_batch_refuses_surrogates_as_the_loop_does() -> None:
    sets = [{"a": str(i)} for i in range(20)]
    for bad in ("\udcff", "\udcc3\udca9", "\ud800"):
        with pytest.raises(UnicodeEncodeError):
            fingerprints([*sets, {"a": bad}])
