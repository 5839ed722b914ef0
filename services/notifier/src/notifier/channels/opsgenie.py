"""Opsgenie Alert API v2, as Alertmanager's ``opsgenie_configs`` speaks it.

A firing group creates an alert (``POST v2/alerts``) whose ``alias`` is the SHA-256 of
the group key, as Alertmanager's, so Opsgenie folds a group's repeated notifications into
one alert and a group's resolution closes it (``POST v2/alerts/{alias}/close``). With
``update_alerts`` the message and description of the open alert are updated too (the
create alone would leave them as first sent). Every request carries the ``GenieKey``
header.

Opsgenie answers 202 once it has queued a request. A 4xx (a bad key, a refused field) is
the same on every attempt: dead-lettered with its reason; 429 and 5xx are retried
(Retry-After honoured). The API is a handful of JSON requests; it is spoken directly,
through the SSRF-checking session, with our own retries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from notifier.amtemplate import AlertmanagerTemplates
from notifier.amtemplate.messages import opsgenie_create, opsgenie_fields
from notifier.channels.base import SendResult
from notifier.channels.http_client import http_answer, http_options
from notifier.channels.safe_http import Redactor
from notifier.core.rendering import RenderError
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.config import OpsGenieConfig
from opsmesh.clock import Clock
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested

_encoder = msgspec.json.Encoder()


def alert_alias(group_key: str) -> str:
    """Alertmanager's ``notify.Key.Hash``: the hex SHA-256 of the group key."""
    return hashlib.sha256(group_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: str
    path: str  # relative to api_url, query included
    body: dict[str, Any]


def api_calls(
    config: OpsGenieConfig, request: NotificationRequested, rendered: dict[str, Any]
) -> list[ApiCall]:
    """The requests one notification makes, in order (pure: from rendered fields)."""
    alias = alert_alias(request.group_key)
    by_alias = "?identifierType=alias"
    if all(a.status is AlertStatus.RESOLVED for a in request.alerts):
        close = {"source": rendered["source"]}
        return [ApiCall("POST", f"v2/alerts/{alias}/close{by_alias}", close)]
    create = opsgenie_create(config, request, rendered, alias)
    calls = [ApiCall("POST", "v2/alerts", create)]
    if config.update_alerts:
        message = {"message": create["message"]} if create["message"] else {}
        description = {"description": create["description"]} if create.get("description") else {}
        calls.append(ApiCall("PUT", f"v2/alerts/{alias}/message{by_alias}", message))
        calls.append(ApiCall("PUT", f"v2/alerts/{alias}/description{by_alias}", description))
    return calls


class OpsGenieChannel:
    def __init__(
        self,
        *,
        name: str,
        config: OpsGenieConfig,
        session: aiohttp.ClientSession,
        policy: TargetPolicy,
        clock: Clock,
        templates: AlertmanagerTemplates,
    ) -> None:
        self.name = name
        self._config = config
        self._session = session
        self._policy = policy  # enforced by the session's connector, on every connection
        self._clock = clock
        self._templates = templates
        self._http = http_options(config.http_config)
        self._redact = Redactor([config.api_key.get_secret_value(), *self._http.secrets])

    async def send(self, request: NotificationRequested) -> SendResult:
        try:
            rendered = await self._templates.render(request, opsgenie_fields(self._config))
        except RenderError as exc:
            return SendResult(ok=False, failure=FailureKind.TEMPLATE, error=self._redact(str(exc)))
        api_key = str(rendered.get("api_key", self._config.api_key.get_secret_value())).strip()
        # A key that came out of a template is a secret too.
        redact = Redactor([api_key, self._config.api_key.get_secret_value(), *self._http.secrets])
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "opsmesh-notifier/0.1",
            **self._http.headers,
            # Alertmanager sets it last: it wins over an http_config Authorization.
            "Authorization": f"GenieKey {api_key}",
        }
        result = SendResult(ok=True)
        for call in api_calls(self._config, request, rendered):
            result = await self._call(call, headers, redact)
            if not result.ok:
                return result
        return result

    async def _call(self, call: ApiCall, headers: dict[str, str], redact: Redactor) -> SendResult:
        try:
            async with self._session.request(
                call.method,
                self._config.api_url + call.path,
                data=_encoder.encode(call.body),
                headers=headers,
                allow_redirects=False,
                **self._http.request_kwargs(),
            ) as response:
                what = f"Opsgenie {call.method} {call.path.split('?')[0]}"
                return await http_answer(response, what, redact, self._clock.now())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return redact.failure(exc)
