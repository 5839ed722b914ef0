"""The committed JSON Schemas (docs/schemas) are the ones the code exports."""

from __future__ import annotations

import json
from pathlib import Path

from opsmesh.events import ALL_EVENTS
from opsmesh.events.schema import json_schema, schema_file_name

DOCS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


def test_committed_schemas_match_the_code() -> None:
    expected = {schema_file_name(e): json_schema(e) for e in ALL_EVENTS}
    committed = {p.name: json.loads(p.read_text()) for p in DOCS.glob("*.json")}
    assert set(committed) == set(expected), "run `make schemas` and commit docs/schemas"
    for name, schema in expected.items():
        assert committed[name] == schema, f"{name} is stale: run `make schemas`"
