"""The console's decoding types against Alertmanager's API v2 specification, which the
alert-engine serves (tests/fixtures/openapi/alertmanager-v2.yaml): every field the
console reads is in the specification, and every field it cannot do without is one the
specification requires. The e2e seam test decodes the real engine's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from console.core.shapes import Alert, AlertGroup, AlertStatus, ApiMatcher, Receiver, Silence

SPEC = Path(__file__).parents[4] / "tests" / "fixtures" / "openapi" / "alertmanager-v2.yaml"


def definitions() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text())["definitions"])


def flattened(name: str, defs: dict[str, Any]) -> tuple[set[str], set[str]]:
    """A definition's properties and required fields, its ``allOf`` parts merged."""
    node = defs[name]
    properties, required = set(node.get("properties", {})), set(node.get("required", []))
    for part in node.get("allOf", []):
        if "$ref" in part:
            more = flattened(part["$ref"].rsplit("/", 1)[1], defs)
        else:
            more = (set(part.get("properties", {})), set(part.get("required", [])))
        properties |= more[0]
        required |= more[1]
    return properties, required


@pytest.mark.parametrize(
    ("struct", "definition"),
    [
        (Alert, "gettableAlert"),
        (AlertStatus, "alertStatus"),
        (AlertGroup, "alertGroup"),
        (Receiver, "receiverReference"),
        (Silence, "gettableSilence"),
        (ApiMatcher, "matcher"),
    ],
)
def test_what_the_console_decodes_is_what_the_specification_says(
    struct: type[msgspec.Struct], definition: str
) -> None:
    properties, required = flattened(definition, definitions())
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    read = {f.encode_name for f in info.fields}
    needed = {f.encode_name for f in info.fields if f.required}
    assert read <= properties, f"{definition} lacks {read - properties}"
    assert needed <= required, f"{definition} does not require {needed - required}"
