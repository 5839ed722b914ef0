"""PagerDuty Events API v2 over aiohttp.

Neither Python client fits an asyncio service: ``pdpyras`` is frozen (deprecated
2025-06-20) and its successor ``pagerduty`` is synchronous (an ``httpx2.Client``) with
blocking sleeps and unbounded 429 retries inside the call. The API is one JSON POST,
so it is spoken directly, through the SSRF-checking session, with our own retries.
"""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import msgspec

from notifier.amtemplate import AlertmanagerTemplates
from notifier.amtemplate.messages import pagerduty_fields
from notifier.channels.base import SendResult
from notifier.channels.http_client import http_options
from notifier.channels.safe_http import Redactor
from notifier.core import pagerduty_event
from notifier.core.rendering import RenderError, render_named, template_data
from notifier.core.retry import FailureKind, classify_status
from notifier.core.targets import TargetPolicy
from notifier.receivers.config import PagerDutyConfig
from opsmesh.events.notifications import NotificationRequested
from opsmesh.templating import render_off_loop

_encoder = msgspec.json.Encoder()


class PagerDutyChannel:
    def __init__(
        self,
        *,
        name: str,
        config: PagerDutyConfig,
        session: aiohttp.ClientSession,
        policy: TargetPolicy,
        templates: AlertmanagerTemplates | None = None,
    ) -> None:
        self.name = name
        self._templates = templates
        self._config = config
        self._session = session
        self._policy = policy  # enforced by the session's connector, on every connection
        self._http = http_options(config.http_config)
        self._redact = Redactor(
            [config.routing_key.get_secret_value(), config.url, *self._http.secrets]
        )

    @property
    def rate_key(self) -> str:
        """PagerDuty's limit is per routing key (never logged, so hashed)."""
        secret = self._config.routing_key.get_secret_value()
        return "pagerduty:" + hashlib.sha256(secret.encode()).hexdigest()[:24]

    async def _event(self, request: NotificationRequested) -> dict[str, Any]:
        config = self._config
        routing_key = config.routing_key.get_secret_value()
        if self._templates is not None:
            rendered = await self._templates.render(request, pagerduty_fields(config))
            return pagerduty_event.am_event(request, routing_key=routing_key, rendered=rendered)
        summary = await render_off_loop(_render_summary, config, request)
        return pagerduty_event.event(
            request,
            routing_key=routing_key,
            summary=" ".join(summary.split()),
            source=config.source or "opsmesh",
            default_severity=config.severity,
        )

    async def send(self, request: NotificationRequested) -> SendResult:
        config = self._config
        try:
            body = _encoder.encode(await self._event(request))
        except RenderError as exc:
            return SendResult(ok=False, failure=FailureKind.TEMPLATE, error=self._redact(str(exc)))
        try:
            async with self._session.post(
                config.url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "opsmesh-notifier/0.1",
                    **self._http.headers,
                },
                allow_redirects=False,
                **self._http.request_kwargs(),
            ) as response:
                text = await response.text()
                failure = classify_status(response.status)
                if failure is None:
                    return SendResult(ok=True, status_code=response.status)
                retry_after: float | None = None
                if "Retry-After" in response.headers:
                    try:
                        retry_after = max(0.0, float(response.headers["Retry-After"]))
                    except ValueError:
                        retry_after = None
                return SendResult(
                    ok=False,
                    status_code=response.status,
                    failure=failure,
                    error=self._redact(f"PagerDuty answered {response.status}: {text[:200]}"),
                    retry_after_s=retry_after,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return self._redact.failure(exc)


def _render_summary(config: PagerDutyConfig, request: NotificationRequested) -> str:
    return render_named(config.summary, "pagerduty_summary.j2", template_data(request))
