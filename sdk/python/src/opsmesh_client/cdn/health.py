"""Which CDN providers are healthy, as health-aggregator's active probes see them.

The mesh probes each provider's edge for a canary asset: health-aggregator runs an HTTP
probe per provider with ``service="cdn"`` and ``check=<provider name>``. Its REST API
answers ``GET /api/v1/services/cdn`` with the service's checks, one entry per check and
instance (``{"check": ..., "instance": ..., "status": "pass"|"warn"|"fail", ...}``; 404
while no probe has reported). A provider is healthy while any of its entries passes or
warns.

``AggregatorHealth`` polls that endpoint in a daemon thread every ``interval_s`` (1 s by
default), so a failing canary is seen within one probe interval plus one poll. When the
aggregator does not answer, it keeps the last known state (a URL helper must not fail
every provider over because the monitoring is down) and says so in one log line, and
again once when the aggregator answers again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

log = logging.getLogger("opsmesh_client.cdn")

DEFAULT_SERVICE = "cdn"
MAX_RESPONSE_BYTES = 1024 * 1024
# The statuses of draft-inadarei-api-health-check that still serve traffic.
_SERVING = frozenset({"pass", "warn"})


class HealthSource(Protocol):
    def healthy(self, provider: str) -> bool | None:
        """True or False as last observed; None while nothing is known about it."""
        ...


class StaticHealth:
    """A health source set by hand: for tests, and for deployments without the mesh."""

    def __init__(self, states: Mapping[str, bool] | None = None) -> None:
        self._states = dict(states or {})

    def set(self, provider: str, healthy: bool) -> None:
        self._states[provider] = healthy

    def healthy(self, provider: str) -> bool | None:
        return self._states.get(provider)


def provider_health(checks: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Provider name → healthy, from the ``checks`` of health-aggregator's service detail."""
    out: dict[str, bool] = {}
    for entry in checks:
        name, status = entry.get("check"), entry.get("status")
        if isinstance(name, str) and isinstance(status, str):
            out[name] = out.get(name, False) or status in _SERVING
    return out


Fetch = Callable[[str, float], tuple[int, bytes]]


def _urllib_fetch(url: str, timeout_s: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return response.status, response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_RESPONSE_BYTES + 1)


class AggregatorHealth:
    """Polls health-aggregator for the ``service``'s checks (see the module's docstring).

    ``poll_once`` is the whole of one poll (tests call it directly); ``start`` runs it
    every ``interval_s`` in a daemon thread until ``stop``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str = DEFAULT_SERVICE,
        interval_s: float = 1.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch = _urllib_fetch,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"health-aggregator URL must be http(s), got {base_url!r}")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._url = f"{base_url.rstrip('/')}/api/v1/services/{quote(service, safe='')}"
        self._interval_s = interval_s
        self._timeout_s = timeout_s if timeout_s is not None else min(interval_s, 2.0)
        self._clock = clock
        self._fetch = fetch
        self._states: dict[str, bool] = {}
        self._answered_at: float | None = None
        self._unreachable = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def healthy(self, provider: str) -> bool | None:
        return self._states.get(provider)

    @property
    def states(self) -> dict[str, bool]:
        return dict(self._states)

    @property
    def reachable(self) -> bool:
        """False from a failed poll until the next one that succeeds."""
        return not self._unreachable

    def age_s(self) -> float | None:
        """Seconds since the aggregator last answered (None: never)."""
        return None if self._answered_at is None else self._clock() - self._answered_at

    def poll_once(self) -> bool:
        """One poll; True when the aggregator answered (the states are then current)."""
        try:
            status, body = self._fetch(self._url, self._timeout_s)
            if status == 404:
                states: dict[str, bool] = {}  # no probe of the service has reported yet
            elif status == 200 and len(body) <= MAX_RESPONSE_BYTES:
                document = json.loads(body)
                states = provider_health(document.get("checks", []))
            else:
                raise ValueError(f"HTTP {status}")
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            if not self._unreachable:
                self._unreachable = True
                log.warning(
                    "health-aggregator at %s unreachable (%s); keeping the last known CDN "
                    "provider health",
                    self._url,
                    exc,
                )
            return False
        if self._unreachable:
            self._unreachable = False
            log.warning("health-aggregator at %s answers again", self._url)
        self._states = states  # one assignment: readers see the old or the new, whole
        self._answered_at = self._clock()
        return True

    def start(self) -> AggregatorHealth:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="opsmesh-cdn-health", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 1.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self._interval_s)
