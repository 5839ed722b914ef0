"""The read side: every check of every replica, refreshed from PostgreSQL.

Each replica owns only its partitions' checks, but the endpoints answer for the whole
fleet, so they read the table all replicas write. The view refreshes incrementally (rows
whose status changed since the last refresh, with an overlap for late commits) on an
interval; only services that changed are re-aggregated, and ``/health/`` is encoded once
per change, not per request. Per-service detail reads that service's rows fresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import msgspec

from health_aggregator.core.checks import CheckKey, CheckState
from health_aggregator.core.policy import Policy, ServiceHealth, overall, service_health
from health_aggregator.core.render import fleet_document, http_status
from health_aggregator.storage.checks import CheckStore
from opsmesh.clock import Clock

_OVERLAP = dt.timedelta(seconds=2)


class HealthView:
    def __init__(
        self,
        store: CheckStore,
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
        self._by_service: dict[str, dict[CheckKey, CheckState]] = {}
        self._health: dict[str, ServiceHealth] = {}
        self._dirty: set[str] = set()
        self._since: dt.datetime | None = None
        self._fleet: tuple[int, bytes] = (200, b"")
        self._fleet_stale = True
        self.loaded = False

    def policy(self, service: str) -> Policy:
        return self._policies.get(service, self._default)

    async def refresh(self) -> int:
        """Pull rows whose status changed; returns how many arrived."""
        since = self._since - _OVERLAP if self._since is not None else None
        rows, gone, newest = await self._store.changed_since(since)
        changed = 0
        for service, instance, check in gone:
            checks = self._by_service.get(service, {})
            if checks.pop((service, instance, check), None) is not None:
                self._dirty.add(service)
                changed += 1
            if not checks:
                # Its last check deregistered: the service leaves the fleet view.
                self._by_service.pop(service, None)
                if self._health.pop(service, None) is not None:
                    self._fleet_stale = True
                self._dirty.discard(service)
        for state in rows:
            checks = self._by_service.setdefault(state.service, {})
            old = checks.get(state.key)
            checks[state.key] = state
            if old is None or old.status is not state.status or old.critical != state.critical:
                self._dirty.add(state.service)
                changed += 1
        if newest is not None:
            self._since = newest
        self.loaded = True
        return changed

    def _rebuild(self) -> None:
        """Re-aggregate only the services that changed, then the fleet document."""
        if not self._dirty and not self._fleet_stale:
            return
        for service in self._dirty:
            checks = self._by_service.get(service, {}).values()
            self._health[service] = service_health(service, checks, self.policy(service))
        if self._dirty or self._fleet_stale:
            services = [self._health[name] for name in sorted(self._health)]
            doc = fleet_document(
                services, service_id=self._service_id, version=self._version, now=self._clock.now()
            )
            self._fleet = (http_status(overall(services)), msgspec.json.encode(doc))
        self._dirty.clear()
        self._fleet_stale = False

    def fleet(self) -> tuple[int, bytes]:
        """``/health/``: (HTTP status, encoded application/health+json)."""
        self._rebuild()
        return self._fleet

    def services(self) -> list[ServiceHealth]:
        self._rebuild()
        return [self._health[name] for name in sorted(self._health)]

    def service(self, name: str) -> ServiceHealth | None:
        self._rebuild()
        return self._health.get(name)
