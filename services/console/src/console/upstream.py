"""The other services, each only through its REST API.

A failure has a class: the service could not be reached or answered 5xx (transient: the
page says so and the next poll or reload tries again), or it refused the request with a
4xx and its reason (deterministic: shown to the user as the service said it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import msgspec

from alert_engine.api.shapes import PostableSilence
from alert_engine.core.matchers import Matcher, format_matchers
from console.core.shapes import (
    AlertGroup,
    Silence,
    groups_decoder,
    silence_decoder,
    silences_decoder,
)

# An answer's reason is shown to the user; a long error body is cut.
_REASON_LIMIT = 500


class UpstreamError(Exception):
    def __init__(self, service: str, status: int | None, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.status = status
        self.reason = reason

    @property
    def transient(self) -> bool:
        return self.status is None or self.status >= 500


class Upstream:
    """One service's base URL over the console's shared HTTP client."""

    def __init__(
        self,
        name: str,
        base_url: str,
        http: aiohttp.ClientSession,
        read_token: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._read_token = read_token  # sent when a call names no token of its own

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | None = None,
        token: str | None = None,
    ) -> bytes:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        token = token or self._read_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http.request(
                method, self.base_url + path, params=params, data=body, headers=headers
            ) as response:
                payload = await response.read()
                if response.status >= 400:
                    text = payload.decode(errors="replace").strip()[:_REASON_LIMIT]
                    raise UpstreamError(self.name, response.status, text or response.reason or "")
                return payload
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(self.name, None, f"unreachable ({type(exc).__name__})") from None

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        return json.loads(await self.request("GET", path, params=params))


class AlertEngine(Upstream):
    async def groups_body(self) -> bytes:
        """Every group, silenced, inhibited and muted alerts included (the page filters)."""
        return await self.request(
            "GET",
            "/api/v2/alerts/groups",
            params={"active": "true", "silenced": "true", "inhibited": "true", "muted": "true"},
        )

    async def pending_body(self) -> bytes:
        """The rule alerts whose ``for`` has not elapsed (``{"alerts": [], "pending": [...]}``),
        without the routed alerts, which the groups already hold."""
        return await self.request("GET", "/api/v1/alerts", params={"pending_only": "true"})

    async def groups(self) -> list[AlertGroup]:
        return groups_decoder.decode(await self.groups_body())

    async def silences(self) -> list[Silence]:
        return silences_decoder.decode(await self.request("GET", "/api/v2/silences"))

    async def silence(self, silence_id: str) -> Silence:
        return silence_decoder.decode(await self.request("GET", f"/api/v2/silence/{silence_id}"))

    async def save_silence(self, silence: PostableSilence, token: str) -> str:
        answer = await self.request(
            "POST", "/api/v2/silences", body=msgspec.json.encode(silence), token=token
        )
        return str(json.loads(answer)["silenceID"])

    async def expire_silence(self, silence_id: str, token: str) -> None:
        await self.request("DELETE", f"/api/v2/silence/{silence_id}", token=token)

    async def history(self, fingerprint: str) -> list[dict[str, Any]]:
        found = await self.get_json(f"/api/v1/alerts/{fingerprint}/history", {"limit": "50"})
        return list(found["history"])

    async def explain(self, labels: dict[str, str]) -> dict[str, Any]:
        text = format_matchers(Matcher.from_api(k, v, False) for k, v in sorted(labels.items()))
        return dict(await self.get_json("/api/v1/explain", {"labels": text}))

    async def suppressed(self) -> list[dict[str, Any]]:
        return list(await self.get_json("/api/v1/suppressed", {"limit": "100"}))

    async def notifications(self, fingerprint: str) -> list[dict[str, Any]]:
        """The notification log's entries that carried the alert (its last notification
        per group and receiver), with their reasons and idempotency keys."""
        found = await self.get_json(
            "/api/v1/notifications", {"fingerprint": fingerprint, "limit": "50"}
        )
        return list(found)


class Notifier(Upstream):
    async def summary(self) -> dict[str, Any]:
        return dict(await self.get_json("/api/v1/deliveries/summary"))

    async def deliveries(
        self, params: dict[str, str], keys: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The delivery log, newest first: ``params`` filter it (receiver, integration,
        result, limit), ``keys`` pick idempotency keys."""
        query: list[tuple[str, str]] = [*params.items(), *(("idempotency_key", k) for k in keys)]
        return list(json.loads(await self.request("GET", "/api/v1/deliveries", params=query)))

    async def dead_letters(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return list(await self.get_json("/api/v1/dead-letters", params))

    async def replay(self, letter_id: str, token: str) -> None:
        await self.request("POST", f"/api/v1/dead-letters/{letter_id}/replay", token=token)
