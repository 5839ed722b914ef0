"""In-repo fakes of the console's ports, for its tests (no runtime module imports this)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from console.upstream import UpstreamError


class FakeGroupsSource:
    """Answers the groups it was last given, as the alert-engine's API v2 would encode
    them, or fails as an unreachable engine does."""

    def __init__(self) -> None:
        self.body = b"[]"
        self.down = False
        self.reads = 0

    def set_groups(self, groups: Sequence[Mapping[str, object]]) -> None:
        self.body = json.dumps(list(groups)).encode()

    async def groups_body(self) -> bytes:
        self.reads += 1
        if self.down:
            raise UpstreamError("alert-engine", None, "unreachable (fake)")
        return self.body
