"""NUL characters, which PostgreSQL cannot store, are found in any string of a record."""

from __future__ import annotations

import msgspec
import pytest

from opsmesh.kafka.consumer import holds_nul


@pytest.mark.parametrize(
    "document",
    [
        {"name": "a\x00b"},
        {"labels": {"host": "\x00"}},
        {"labels": {"ho\x00st": "a"}},
        {"plan": [[{"Node Type": ["x", "y\x00"]}]]},
    ],
)
def test_a_nul_anywhere_is_found(document: object) -> None:
    assert holds_nul(msgspec.json.encode(document))


@pytest.mark.parametrize(
    "document",
    [
        {"name": "a\\u0000b"},  # the six characters, not a NUL: its backslash is escaped
        {"value": 0, "labels": {"host": "a"}},
        {"plan": [[[[]]]]},
    ],
)
def test_no_nul_is_found_where_there_is_none(document: object) -> None:
    assert not holds_nul(msgspec.json.encode(document))


def test_a_deep_document_is_walked_without_recursion() -> None:
    deep = b"[" * 900 + b'"\\u0000"' + b"]" * 900
    assert holds_nul(deep)
