"""The base of every event: a typed, versioned record, JSON on the wire.

Each event class names its CloudEvents ``type`` and its schema version. Consumers
accept any version up to the one they know; newer majors go to the DLQ with a reason.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

# Size limits on every input: names, label sets and free text are bounded at decode time.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LabelName = Annotated[str, msgspec.Meta(pattern=LABEL_NAME_PATTERN, max_length=100)]
LabelValue = Annotated[str, msgspec.Meta(max_length=1024)]
Labels = Annotated[dict[LabelName, LabelValue], msgspec.Meta(max_length=64)]
Text = Annotated[str, msgspec.Meta(max_length=16_384)]
# Up to 9999-12-31T23:59:59Z, the last second a datetime holds: a later stamp (the year
# 10000) cannot be rendered or converted anywhere downstream.
MAX_EPOCH_SECONDS = 253_402_300_799
EpochSeconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_EPOCH_SECONDS)]


class Event(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=False, gc=False):
    """Base class; subclasses set ``EVENT_TYPE`` and ``SCHEMA_VERSION``.

    ``gc=False``: events are immutable values that never form reference cycles, so the
    cyclic collector need not track them. Consumers hold a decoded batch (up to 5,000
    events) while handling it; tracked, they made the collector's passes a large share of
    the consume path.
    """

    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.event"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = 1
