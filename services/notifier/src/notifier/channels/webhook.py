"""Webhooks: Alertmanager's payload, signed per the Standard Webhooks spec.

``webhook-id`` is the request's idempotency key, so a receiver can drop the rare
duplicate that the delivery log cannot rule out (a crash between send and record).
Several secrets may be active at once (rotation): each signs, all signatures are sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import msgspec
from standardwebhooks.webhooks import Webhook

from notifier.channels.base import SendResult
from notifier.channels.http_client import HttpOptions
from notifier.channels.safe_http import Redactor
from notifier.core.retry import classify_status, retry_after_s
from notifier.core.targets import TargetPolicy
from notifier.core.webhook_payload import webhook_payload
from opsmesh.clock import Clock
from opsmesh.events.notifications import NotificationRequested

_encoder = msgspec.json.Encoder()


class WebhookChannel:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        secrets: Sequence[str],
        session: aiohttp.ClientSession,
        policy: TargetPolicy,
        clock: Clock,
        http: HttpOptions | None = None,
        max_alerts: int = 0,
    ) -> None:
        self.name = name
        self._url = url
        self._http = http or HttpOptions()
        self._max_alerts = max_alerts
        self._signers = [Webhook(secret) for secret in secrets]
        self._session = session
        self._policy = policy  # enforced by the session's connector, on every connection
        self._clock = clock
        # Tokens in a webhook URL's path or query, and the signing secrets, never show.
        self._redact = Redactor([url, *secrets, *self._http.secrets])

    async def send(self, request: NotificationRequested) -> SendResult:
        body = _encoder.encode(webhook_payload(request, self._max_alerts))
        headers = {"Content-Type": "application/json", "User-Agent": "opsmesh-notifier/0.1"}
        headers.update(self._http.headers)
        headers.update(self._signature_headers(request.idempotency_key, body))
        try:
            # Redirects are refused by the session (Standard Webhooks: a 3xx is a
            # failure); the target must be configured where it is.
            async with self._session.post(
                self._url,
                data=body,
                headers=headers,
                allow_redirects=False,
                **self._http.request_kwargs(),
            ) as response:
                await response.read()
                failure = classify_status(response.status)
                if failure is None:
                    return SendResult(ok=True, status_code=response.status)
                return SendResult(
                    ok=False,
                    status_code=response.status,
                    failure=failure,
                    error=f"HTTP {response.status} from webhook",
                    retry_after_s=retry_after_s(
                        response.headers.get("Retry-After"), self._clock.now()
                    ),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return self._redact.failure(exc)

    def _signature_headers(self, message_id: str, body: bytes) -> dict[str, str]:
        now = self._clock.now()
        headers = {"webhook-id": message_id, "webhook-timestamp": str(math.floor(now))}
        if self._signers:
            stamp = datetime.fromtimestamp(math.floor(now), UTC)
            text = body.decode()
            headers["webhook-signature"] = " ".join(
                signer.sign(msg_id=message_id, timestamp=stamp, data=text)
                for signer in self._signers
            )
        return headers
