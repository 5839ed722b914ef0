"""Slack: incoming webhooks (``AsyncWebhookClient``) or the Web API (``AsyncWebClient``,
``chat.postMessage``) with Block Kit, always with a ``text`` fallback.

Through the Web API the first message of a group is remembered (its channel and ``ts``),
and later notifications of that group, above all its resolution, update it in place with
``chat.update`` instead of adding noise. 429 answers come back as a failure carrying
Retry-After: the lane waits, not the HTTP call (slack-sdk's own rate-limit handler would
sleep inside the request).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from notifier.amtemplate import AlertmanagerTemplates
from notifier.amtemplate.messages import slack_fields, slack_message
from notifier.channels.base import SendResult
from notifier.channels.http_client import http_options
from notifier.channels.safe_http import Redactor
from notifier.core.rendering import RenderError, render_named, template_data
from notifier.core.retry import FailureKind, classify_status
from notifier.core.targets import TargetPolicy
from notifier.receivers.config import SlackConfig
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested
from opsmesh.templating import render_off_loop

_TEXT_MAX = 3000  # Block Kit section text limit


def message_ref(receiver: str, integration: str, group_key: str) -> str:
    """Where a group's message is recorded: a digest, as a group key can outgrow an index
    entry (migration 0004 moved the earlier plain refs to this form)."""
    return hashlib.sha256(f"{receiver}|{integration}|{group_key}".encode()).hexdigest()


class MessageRefs(Protocol):
    """Where a group's Slack message is (channel id, ts), so it can be updated."""

    async def get(self, key: str) -> tuple[str, str] | None: ...

    async def put(self, key: str, channel: str, ts: str) -> None: ...

    async def drop(self, key: str) -> None: ...


class MemoryMessageRefs:
    """Message refs for one process's lifetime: the CLI's one-off sends (no database),
    and the tests'. The service keeps them in PostgreSQL, so an update finds the message
    after a restart or on another replica."""

    def __init__(self) -> None:
        self.refs: dict[str, tuple[str, str]] = {}

    async def get(self, key: str) -> tuple[str, str] | None:
        return self.refs.get(key)

    async def put(self, key: str, channel: str, ts: str) -> None:
        self.refs[key] = (channel, ts)

    async def drop(self, key: str) -> None:
        self.refs.pop(key, None)


def _escape(value: Any) -> Any:
    """Slack's mrkdwn reads ``<`` ``>`` ``&`` as markup: label values are escaped so a
    value like ``<sda1>`` shows as text and cannot forge a link or a mention."""
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        out = [_escape(v) for v in value]
        return type(value)(out) if type(value) is not list else out
    return value


def render_slack(config: SlackConfig, request: NotificationRequested) -> tuple[str, str]:
    """(title, mrkdwn text) from the configured or default templates."""
    data = _escape(template_data(request))
    title = render_named(config.title, "slack_title.j2", data).strip()
    text = render_named(config.text, "slack_text.j2", data).strip()
    return title, text


def blocks(title: str, text: str, request: NotificationRequested) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150] or "alert"}},
    ]
    if text.strip():
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_TEXT_MAX]}})
    context = f"receiver `{request.receiver}` · {request.reason.value}"
    if request.external_url:
        context += f" · <{request.external_url}|open>"
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return out


def _retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class SlackChannel:
    def __init__(
        self,
        *,
        name: str,
        receiver: str,
        config: SlackConfig,
        session: aiohttp.ClientSession,
        policy: TargetPolicy,
        refs: MessageRefs,
        timeout_s: float,
        templates: AlertmanagerTemplates | None = None,
    ) -> None:
        self.name = name
        self._templates = templates
        self._receiver = receiver
        self._config = config
        self._policy = policy  # enforced by the session's connector, on every connection
        self._refs = refs
        timeout = max(1, int(timeout_s))
        # Alertmanager's http_config: credentials and TLS on the incoming-webhook POST (a
        # proxy in front of Slack may want them); TLS only with a bot token, whose
        # Authorization header is the token (receivers/loading.py refuses credentials there).
        options = http_options(config.http_config)
        self._webhook: AsyncWebhookClient | None = None
        self._web: AsyncWebClient | None = None
        # The session carries the SSRF-checking resolver, TLS verification and timeouts.
        if config.api_url is not None:
            self._url = config.api_url.get_secret_value()
            self._webhook = AsyncWebhookClient(
                self._url,
                timeout=timeout,
                session=session,
                ssl=options.ssl_context,
                default_headers=options.headers,
                retry_handlers=[],
            )
        else:
            assert config.token is not None
            self._url = config.api_base_url
            self._web = AsyncWebClient(
                token=config.token.get_secret_value(),
                base_url=config.api_base_url,
                timeout=timeout,
                session=session,
                ssl=options.ssl_context,
                retry_handlers=[],
            )
        # The webhook URL is the secret (its path), and so are the bot token and credentials.
        self._redact = Redactor(
            [s.get_secret_value() for s in (config.api_url, config.token) if s is not None]
            + list(options.secrets)
        )

    @property
    def rate_key(self) -> str:
        """Slack's limit is per channel: one message per second."""
        ident = self._config.channel if self._web is not None else self._url
        return "slack:" + hashlib.sha256(f"{self._url}|{ident}".encode()).hexdigest()[:24]

    async def _body(self, request: NotificationRequested) -> dict[str, Any]:
        """The message: Alertmanager's (one attachment) for Go templates, else Block Kit."""
        if self._templates is not None:
            rendered = await self._templates.render(request, slack_fields(self._config))
            return slack_message(self._config, rendered)
        title, text = await render_off_loop(render_slack, self._config, request)
        return {"text": f"{title}\n{text}"[:_TEXT_MAX], "blocks": blocks(title, text, request)}

    async def send(self, request: NotificationRequested) -> SendResult:
        try:
            body = await self._body(request)
        except RenderError as exc:
            return SendResult(ok=False, failure=FailureKind.TEMPLATE, error=self._redact(str(exc)))
        try:
            if self._webhook is not None:
                return await self._send_webhook(body)
            return await self._send_web(request, body)
        except (aiohttp.ClientError, TimeoutError, OSError, SlackClientError) as exc:
            return self._redact.failure(exc)

    async def _send_webhook(self, body: dict[str, Any]) -> SendResult:
        assert self._webhook is not None
        response = await self._webhook.send_dict(body)
        failure = classify_status(response.status_code)
        if failure is None and response.body.strip() == "ok":
            return SendResult(ok=True, status_code=response.status_code)
        return SendResult(
            ok=False,
            status_code=response.status_code,
            failure=failure or FailureKind.CLIENT_ERROR,
            error=self._redact(
                f"Slack webhook answered {response.status_code}: {response.body[:200]}"
            ),
            retry_after_s=_retry_after(response.headers),
        )

    async def _send_web(self, request: NotificationRequested, body: dict[str, Any]) -> SendResult:
        assert self._web is not None
        assert self._config.channel is not None
        body = dict(body)
        channel = body.pop("channel", None) or self._config.channel
        ref_key = message_ref(self._receiver, self.name, request.group_key)
        try:
            if request.status is AlertStatus.RESOLVED:
                ref = await self._refs.get(ref_key)
                if ref is not None:
                    channel, ts = ref
                    await self._web.chat_update(channel=channel, ts=ts, **body)
                    # The incident is over; the group's next firing is a new message.
                    await self._refs.drop(ref_key)
                    return SendResult(ok=True, status_code=200)
            # New or more alerts post a new message (it notifies people; an edit does not).
            response = await self._web.chat_postMessage(channel=channel, **body)
        except SlackApiError as exc:
            status = int(exc.response.status_code)
            failure = classify_status(status) or FailureKind.CLIENT_ERROR
            data = exc.response.data
            # Slack answers JSON with an "error" code; anything else (a proxy's page) is
            # shown briefly, redacted like every error.
            reason = data.get("error", "") if isinstance(data, dict) else str(data)[:200]
            return SendResult(
                ok=False,
                status_code=status,
                failure=failure,
                error=self._redact(f"Slack API {status}: {reason}"),
                retry_after_s=_retry_after(exc.response.headers),
            )
        posted_in = str(response.get("channel") or channel)
        posted_ts = response.get("ts")
        if posted_ts and request.status is AlertStatus.FIRING:
            await self._refs.put(ref_key, posted_in, str(posted_ts))
        return SendResult(ok=True, status_code=int(response.status_code))
