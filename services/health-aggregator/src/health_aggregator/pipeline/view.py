"""The read side: every check of every replica, refreshed from PostgreSQL.

Each replica owns only its partitions' checks, but the endpoints answer for the whole
fleet, so they read the table all replicas write. The view refreshes incrementally (rows
updated since the last refresh, with an overlap for late commits) on an interval, and
the aggregated documents are computed once per change, not per request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from health_aggregator.core.book import CheckKey, CheckState
from health_aggregator.core.policy import Policy, ServiceHealth, aggregate, overall
from health_aggregator.core.render import fleet_document, http_status
from health_aggregator.storage.checks import CheckStore
from opsmesh.clock import Clock

_OVERLAP = dt.timedelta(seconds=2)


class HealthView:
    def __init__(
        self,
        store: Callable[[], CheckStore],
        *,
        clock: Clock,
        policies: Mapping[str, Policy],
        default_policy: Policy,
        service_id: str,
        version: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policies = policies
        self._default = default_policy
        self._service_id = service_id
        self._version = version
        self._checks: dict[CheckKey, CheckState] = {}
        self._since: dt.datetime | None = None
        self._services: list[ServiceHealth] = []
        self._by_name: dict[str, ServiceHealth] = {}
        self._fleet: tuple[int, bytes] = (200, b"")
        self.loaded = False
        self._dirty = True

    async def refresh(self) -> int:
        """Pull changed rows; returns how many arrived."""
        since = self._since - _OVERLAP if self._since is not None else None
        rows, newest = await self._store().changed_since(since)
        changed = 0
        for state in rows:
            old = self._checks.get(state.key)
            self._checks[state.key] = state
            # A heartbeat only moves times: the aggregate (and /health/) stays as it was,
            # so steady heartbeats never make requests wait for a rebuild.
            if old is None or old.status is not state.status or old.critical != state.critical:
                changed += 1
        if newest is not None:
            self._since = newest
        if changed or not self.loaded:
            self._dirty = True
        self.loaded = True
        return changed

    def _rebuild(self) -> None:
        if not self._dirty:
            return
        self._services = aggregate(self._checks.values(), self._policies, self._default)
        self._by_name = {s.service: s for s in self._services}
        doc = fleet_document(
            self._services,
            service_id=self._service_id,
            version=self._version,
            now=self._clock.now(),
        )
        self._fleet = (http_status(overall(self._services)), msgspec.json.encode(doc))
        self._dirty = False

    def fleet(self) -> tuple[int, bytes]:
        """``/health/``: (HTTP status, encoded application/health+json)."""
        self._rebuild()
        return self._fleet

    def services(self) -> list[ServiceHealth]:
        self._rebuild()
        return self._services

    def service(self, name: str) -> ServiceHealth | None:
        self._rebuild()
        return self._by_name.get(name)

    def summary(self) -> dict[str, Any]:
        return {"checks": len(self._checks), "services": len(self.services())}
