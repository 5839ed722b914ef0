"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, optional auth, HTML and text.

SMTP replies classify like HTTP ones: 4xx are transient (retry), 5xx and authentication
failures are permanent; connection errors and timeouts retry.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from notifier.channels.base import SendResult
from notifier.core.retry import FailureKind
from notifier.receivers import EmailConfig
from notifier.rendering import RenderError, render_named, template_data
from opsmesh.events.notifications import NotificationRequested


def build_message(config: EmailConfig, request: NotificationRequested) -> EmailMessage:
    data = template_data(request)
    subject = render_named(config.subject, "email_subject.j2", data)
    message = EmailMessage()
    # Header injection: a subject is one line whatever the labels hold.
    message["Subject"] = " ".join(subject.split())[:998]
    message["From"] = config.from_
    message["To"] = ", ".join(config.to)
    if config.cc:
        message["Cc"] = ", ".join(config.cc)
    message["Date"] = formatdate(localtime=False)
    domain = config.from_.rpartition("@")[2] or "opsmesh.local"
    message["Message-ID"] = make_msgid(domain=domain)
    # A stable id, so mail systems and humans can spot a rare resend.
    message["X-Opsmesh-Idempotency-Key"] = request.idempotency_key
    message.set_content(render_named(config.text, "email.txt.j2", data))
    message.add_alternative(render_named(config.html, "email.html.j2", data, html=True), "html")
    return message


class EmailChannel:
    def __init__(
        self,
        *,
        name: str,
        config: EmailConfig,
        timeout_s: float,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._config = config
        host, _, port = config.smarthost.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"smarthost {config.smarthost!r} is not host:port")
        self._host = host
        self._port = int(port)
        self._timeout_s = timeout_s
        self._tls_context = tls_context or ssl.create_default_context()

    async def send(self, request: NotificationRequested) -> SendResult:
        config = self._config
        try:
            message = build_message(config, request)
        except RenderError as exc:
            return SendResult(ok=False, failure=FailureKind.CLIENT_ERROR, error=str(exc))
        password = config.auth_password.get_secret_value() if config.auth_password else None
        try:
            refused, _ = await aiosmtplib.send(
                message,
                recipients=[*config.to, *config.cc],
                hostname=self._host,
                port=self._port,
                username=config.auth_username,
                password=password,
                use_tls=config.tls,
                start_tls=config.require_tls and not config.tls,
                tls_context=self._tls_context,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            return SendResult(
                ok=False, failure=FailureKind.CLIENT_ERROR, error=f"SMTP auth: {exc.code}"
            )
        except aiosmtplib.SMTPResponseException as exc:
            kind = FailureKind.SERVER_ERROR if 400 <= exc.code < 500 else FailureKind.CLIENT_ERROR
            return SendResult(
                ok=False,
                failure=kind,
                status_code=exc.code,
                error=f"SMTP {exc.code}: {exc.message}",
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return SendResult(ok=False, failure=FailureKind.CLIENT_ERROR, error=str(exc)[:500])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(
                ok=False, failure=FailureKind.NETWORK, error=f"{type(exc).__name__}: {exc}"
            )
        if refused:
            return SendResult(
                ok=False,
                failure=FailureKind.CLIENT_ERROR,
                error=f"recipients refused: {sorted(refused)}",
            )
        return SendResult(ok=True, status_code=250)
