"""Microsoft Teams incoming webhooks, as Alertmanager's ``msteams_configs`` posts to them:
one MessageCard (title, summary, Markdown text, a theme colour by the group's status).

The webhook URL is the secret (its path): it never shows in errors or logs. A 4xx is the
same on every attempt (a removed webhook answers 404 or 410): dead-lettered with its
reason; 429 (Teams throttles a busy webhook) and 5xx are retried, Retry-After honoured.
"""

from __future__ import annotations

import aiohttp
import msgspec
from yarl import URL

from notifier.amtemplate import AlertmanagerTemplates
from notifier.amtemplate.messages import msteams_card, msteams_fields
from notifier.channels.base import SendResult
from notifier.channels.http_client import http_answer, http_options
from notifier.channels.safe_http import Redactor
from notifier.core.rendering import RenderError
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.config import MSTeamsConfig
from opsmesh.clock import Clock
from opsmesh.events.notifications import NotificationRequested

_encoder = msgspec.json.Encoder()


class MSTeamsChannel:
    def __init__(
        self,
        *,
        name: str,
        config: MSTeamsConfig,
        session: aiohttp.ClientSession,
        policy: TargetPolicy,
        clock: Clock,
        templates: AlertmanagerTemplates,
    ) -> None:
        self.name = name
        self._config = config
        self._url = config.webhook_url.get_secret_value()
        self._session = session
        self._policy = policy  # enforced by the session's connector, on every connection
        self._clock = clock
        self._templates = templates
        self._http = http_options(config.http_config)
        # A server's error page may quote the path alone (where the secret is).
        path = URL(self._url)
        self._redact = Redactor([self._url, path.raw_path_qs, path.raw_path, *self._http.secrets])

    async def send(self, request: NotificationRequested) -> SendResult:
        try:
            rendered = await self._templates.render(request, msteams_fields(self._config))
        except RenderError as exc:
            return SendResult(ok=False, failure=FailureKind.TEMPLATE, error=self._redact(str(exc)))
        body = _encoder.encode(msteams_card(request, rendered))
        try:
            async with self._session.post(
                self._url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "opsmesh-notifier/0.1",
                    **self._http.headers,
                },
                allow_redirects=False,
                **self._http.request_kwargs(),
            ) as response:
                return await http_answer(response, "Teams webhook", self._redact, self._clock.now())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return self._redact.failure(exc)
