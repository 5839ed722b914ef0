"""Bodies of ``POST /api/v1/slow-queries`` and ``POST /api/v1/health-reports``: a batch
``{"events": [...]}`` of one event type, each event decoded on its own as the type (the
topic's schema, with its limits) and reported by index when rejected, as samples are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from metrics_ingest.rollup.ingest import BadBody, BodyError, Rejected, RejectReason
from opsmesh.events.base import Event

E = TypeVar("E", bound=Event)


@dataclass(frozen=True, slots=True)
class ParsedEvents(Generic[E]):
    events: list[E]
    rejected: list[Rejected]


class _Batch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: list[msgspec.Raw]


_BATCH = msgspec.json.Decoder(_Batch)


def parse_events(body: bytes, event_type: type[E], max_events: int) -> ParsedEvents[E]:
    try:
        batch = _BATCH.decode(body)
    except msgspec.ValidationError as exc:
        raise BadBody(BodyError.NOT_A_BATCH, f'expected {{"events": [...]}}: {exc}') from exc
    except msgspec.DecodeError as exc:
        raise BadBody(BodyError.INVALID_JSON, str(exc)) from exc
    except RecursionError:
        raise BadBody(BodyError.INVALID_JSON, "JSON nested too deeply") from None
    if len(batch.events) > max_events:
        raise BadBody(
            BodyError.TOO_MANY_SAMPLES, f"{len(batch.events)} events > limit {max_events}"
        )
    decoder = msgspec.json.Decoder(event_type)
    events: list[E] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(batch.events):
        if b"\\u0000" in bytes(raw):
            # PostgreSQL stores no NUL: refused now, not by the consumer after the ack.
            rejected.append(Rejected(index, RejectReason.UNSTORABLE_TEXT, "text contains NUL"))
            continue
        try:
            event = decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            rejected.append(Rejected(index, RejectReason.SCHEMA_VIOLATION, str(exc)))
            continue
        except RecursionError:
            rejected.append(Rejected(index, RejectReason.SCHEMA_VIOLATION, "nested too deeply"))
            continue
        if event.schema_version > event_type.SCHEMA_VERSION:
            detail = f"schema_version {event.schema_version} > {event_type.SCHEMA_VERSION}"
            rejected.append(Rejected(index, RejectReason.SCHEMA_VIOLATION, detail))
            continue
        events.append(event)
    return ParsedEvents(events, rejected)
