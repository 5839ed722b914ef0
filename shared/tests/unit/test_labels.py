"""Label fingerprints are Prometheus/Alertmanager's FNV-1a 64 of the sorted pairs."""

from __future__ import annotations

import pytest

from opsmesh.labels import _fnv1a_add, fingerprint, series_id

FNV_OFFSET = 0xCBF29CE484222325


def test_empty_label_set_is_the_fnv_offset() -> None:
    assert fingerprint({}) == "cbf29ce484222325"


def test_fnv1a_64_of_a() -> None:
    assert _fnv1a_add(FNV_OFFSET, b"a") == 0xAF63DC4C8601EC8C


def test_fnv1a_of_nothing_is_unchanged() -> None:
    assert _fnv1a_add(FNV_OFFSET, b"") == FNV_OFFSET


def test_fnv1a_is_incremental() -> None:
    assert _fnv1a_add(_fnv1a_add(FNV_OFFSET, b"foo"), b"bar") == _fnv1a_add(FNV_OFFSET, b"foobar")


def test_matches_prometheus_common_model() -> None:
    # prometheus/common model: TestMetricToFingerprint / TestLabelsToSignature.
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert int(fingerprint(labels), 16) == 5799056148416392346


def test_is_sixteen_hex_digits() -> None:
    fp = fingerprint({"alertname": "X"})
    assert len(fp) == 16
    assert fp == fp.lower()
    int(fp, 16)


def test_order_independent() -> None:
    a = {"alertname": "X", "host": "a", "env": "prod"}
    b = {"env": "prod", "host": "a", "alertname": "X"}
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    "other",
    [
        {"alertname": "X", "host": "b"},  # value differs
        {"alertname": "X", "hos": "ta"},  # same bytes, split differently
        {"alertname": "X", "host": "a", "env": ""},  # an extra empty label
        {"alertname": "X"},
    ],
)
def test_differs_when_labels_differ(other: dict[str, str]) -> None:
    assert fingerprint({"alertname": "X", "host": "a"}) != fingerprint(other)


def test_unicode_values() -> None:
    assert fingerprint({"a": "é"}) != fingerprint({"a": "e"})
    assert fingerprint({"a": "é"}) == fingerprint({"a": "é"})


def test_series_id() -> None:
    assert series_id("up", {}) == "up"
    assert series_id("cpu", {"b": "2", "a": "1"}) == 'cpu{a="1",b="2"}'
    assert series_id("x", {"a": 'q"\\\n'}) == 'x{a="q\\"\\\\\\n"}'
