"""Which provider serves an asset: the healthy one preferred for the client's region.

A ``RoutingPolicy`` orders providers per region (``regions``), maps country codes to
regions (``countries``; a region may also be named directly) and has a default order for
everyone else. The region's list comes first, then the default order's remaining
providers, so failover always has somewhere to go. ``CdnRouter`` takes the first provider
in that order that its ``HealthSource`` does not report unhealthy (unknown counts as
healthy: before the first probe there is nothing to fail over from); when every provider
is unhealthy it answers with the first preferred (a URL that may work beats none).

Pure: no I/O, no clock; the health source is the only state it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opsmesh_client.cdn.health import HealthSource, StaticHealth
from opsmesh_client.cdn.provider import CdnProvider, ImageTransform


class RoutingError(ValueError):
    """A routing configuration naming providers that do not exist, or none."""


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    default: tuple[str, ...]
    regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    countries: Mapping[str, str] = field(default_factory=dict)  # "DE" -> "eu"

    def order(self, region: str | None) -> tuple[str, ...]:
        preferred: tuple[str, ...] = ()
        if region:
            key = region.strip()
            named = self.countries.get(key.upper(), key)
            preferred = self.regions.get(named, self.regions.get(named.lower(), ()))
        rest = tuple(p for p in self.default if p not in preferred)
        return preferred + rest

    def check(self, known: Sequence[str]) -> None:
        if not self.default:
            raise RoutingError("routing: default: at least one provider")
        names = set(known)
        for where, order in [("default", self.default), *self.regions.items()]:
            unknown = [p for p in order if p not in names]
            if unknown:
                raise RoutingError(f"routing: {where}: unknown providers {', '.join(unknown)}")
        for country, region in self.countries.items():
            if region not in self.regions:
                raise RoutingError(f"routing: countries: {country} -> unknown region {region}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], known: Sequence[str]) -> RoutingPolicy:
        """From ``{"default": [...], "regions": {name: [...]}, "countries": {CC: name}}``;
        ``default`` defaults to the providers in their configured order."""

        def names(where: str, value: Any) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RoutingError(f"routing: {where}: expected a list of provider names")
            return tuple(value)

        regions = config.get("regions", {})
        countries = config.get("countries", {})
        if not isinstance(regions, Mapping) or not isinstance(countries, Mapping):
            raise RoutingError("routing: regions and countries are mappings")
        unknown_keys = set(config) - {"default", "regions", "countries"}
        if unknown_keys:
            raise RoutingError(f"routing: unknown keys {', '.join(sorted(unknown_keys))}")
        policy = cls(
            default=names("default", config["default"]) if "default" in config else tuple(known),
            regions={str(k): names(f"regions.{k}", v) for k, v in regions.items()},
            countries={str(k).upper(): str(v) for k, v in countries.items()},
        )
        policy.check(known)
        return policy


class CdnRouter:
    def __init__(
        self,
        providers: Sequence[CdnProvider],
        policy: RoutingPolicy | None = None,
        health: HealthSource | None = None,
    ) -> None:
        if not providers:
            raise RoutingError("a router needs at least one provider")
        self._providers = {p.name: p for p in providers}
        if len(self._providers) != len(providers):
            raise RoutingError("provider names must be unique")
        self.policy = policy or RoutingPolicy(default=tuple(self._providers))
        self.policy.check(list(self._providers))
        self.health: HealthSource = health or StaticHealth()

    @property
    def providers(self) -> dict[str, CdnProvider]:
        return dict(self._providers)

    def choose(self, region: str | None = None) -> CdnProvider:
        order = self.policy.order(region)
        for name in order:
            if self.health.healthy(name) is not False:
                return self._providers[name]
        return self._providers[order[0]]

    def url(
        self, path: str, *, region: str | None = None, transform: ImageTransform | None = None
    ) -> str:
        return self.choose(region).asset_url(path, transform=transform)
