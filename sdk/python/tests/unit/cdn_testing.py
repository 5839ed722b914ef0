"""In-repo fakes of the CDN interface for the routing and purge tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsmesh_client.cdn import ImageTransform, PurgeError, PurgeLimits, PurgeRequest


@dataclass
class FakeProvider:
    """Answers asset URLs on ``https://<name>.example``; ``failures`` are raised by the next
    purges, in order."""

    provider_name: str
    failures: list[PurgeError] = field(default_factory=list)
    purged: list[PurgeRequest] = field(default_factory=list)
    calls: int = 0

    @property
    def name(self) -> str:
        return self.provider_name

    @property
    def limits(self) -> PurgeLimits:
        return PurgeLimits(max_values_per_call=10)

    async def purge(self, request: PurgeRequest) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.purged.append(request)

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        suffix = f"?w={transform.width}" if transform and transform.width else ""
        return f"https://{self.provider_name}.example/{path}{suffix}"
