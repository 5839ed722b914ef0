"""JSON Schema export, so producers in other languages can validate their events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from opsmesh.events import ALL_EVENTS
from opsmesh.events.base import Event


def json_schema(event_type: type[Event]) -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(event_type)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = (
        f"https://opsmesh.dev/schemas/{event_type.EVENT_TYPE}.v{event_type.SCHEMA_VERSION}.json"
    )
    schema["title"] = event_type.__name__
    schema["x-cloudevents-type"] = event_type.EVENT_TYPE
    schema["x-schema-version"] = event_type.SCHEMA_VERSION
    return schema


def schema_file_name(event_type: type[Event]) -> str:
    return f"{event_type.EVENT_TYPE}.v{event_type.SCHEMA_VERSION}.json"


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in ALL_EVENTS:
        path = directory / schema_file_name(event_type)
        path.write_text(json.dumps(json_schema(event_type), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
