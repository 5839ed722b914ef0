"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, optional auth, HTML and text.

SMTP replies classify like HTTP ones: 4xx are transient (retry), 5xx and authentication
failures are permanent; connection errors and timeouts retry. The smarthost is a
receiver's setting, so it is held to the target policy like any URL: aiosmtplib is
handed a socket already connected to a checked address (``connect_checked``).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from notifier.amtemplate import AlertmanagerTemplates
from notifier.amtemplate.messages import email_fields, prefixed
from notifier.channels.base import SendResult
from notifier.channels.safe_http import Redactor, connect_checked
from notifier.core.rendering import RenderError, render_named, template_data
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy, TargetRefused
from notifier.receivers.config import EmailConfig
from opsmesh.events.notifications import NotificationRequested
from opsmesh.templating import render_off_loop


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


_LINE_BREAKS = re.compile(r"[\r\n]+")
# Headers the message's own structure sets; a template cannot replace them.
_STRUCTURAL_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


def build_am_message(
    config: EmailConfig, request: NotificationRequested, rendered: dict[str, Any]
) -> EmailMessage:
    """An email from fields rendered by Alertmanager's templates: every header of
    ``headers`` (Subject, To and From by default), the HTML body and, when it renders to
    something, the text body, as Alertmanager sends them."""
    message = EmailMessage()
    headers = prefixed(rendered, "header.")
    for name, value in headers.items():
        if name.lower() in _STRUCTURAL_HEADERS:
            continue
        # Header injection: a header is one line whatever the labels hold (Alertmanager
        # Q-encodes line breaks; they become spaces here). Other whitespace is kept.
        message[name] = _LINE_BREAKS.sub(" ", str(value))[:998]
    cc = getattr(config, "cc", [])  # opsmesh's field; Alertmanager sets a Cc header
    if cc and "Cc" not in message:
        message["Cc"] = ", ".join(cc)
    message["Date"] = formatdate(localtime=False)
    if "Message-Id" not in message:
        domain = config.from_.rpartition("@")[2] or "opsmesh.local"
        message["Message-ID"] = make_msgid(domain=domain)
    message["X-Opsmesh-Idempotency-Key"] = request.idempotency_key
    text, html = str(rendered["text"]), str(rendered["html"])
    if text:
        message.set_content(text)
        if html:
            message.add_alternative(html, "html")
    else:
        message.set_content(html, "html")
    return message


class EmailChannel:
    def __init__(
        self,
        *,
        name: str,
        config: EmailConfig,
        policy: TargetPolicy,
        timeout_s: float,
        tls_context: ssl.SSLContext | None = None,
        resolve: Callable[..., Awaitable[list[Any]]] | None = None,
        templates: AlertmanagerTemplates | None = None,
    ) -> None:
        self.name = name
        self._templates = templates
        self._config = config
        host, _, port = config.smarthost.rpartition(":")  # checked when the file loaded
        self._host = host.removeprefix("[").removesuffix("]")
        self._port = int(port)
        self._policy = policy
        self._resolve = resolve  # getaddrinfo's shape; None: the event loop's
        password = config.auth_password.get_secret_value() if config.auth_password else None
        self._redact = Redactor([password])
        self._timeout_s = timeout_s
        self._tls_context = tls_context or ssl.create_default_context()

    async def send(self, request: NotificationRequested) -> SendResult:
        config = self._config
        try:
            if self._templates is not None:
                rendered = await self._templates.render(request, email_fields(config))
                message = build_am_message(config, request, rendered)
            else:
                message = await render_off_loop(build_message, config, request)
        except RenderError as exc:
            return SendResult(ok=False, failure=FailureKind.TEMPLATE, error=self._redact(str(exc)))
        password = config.auth_password.get_secret_value() if config.auth_password else None
        try:
            sock = await connect_checked(
                self._host,
                self._port,
                self._policy,
                timeout_s=self._timeout_s,
                resolve=self._resolve,
            )
        except TargetRefused as exc:
            return SendResult(
                ok=False, failure=FailureKind.REFUSED_TARGET, error=self._redact(str(exc))
            )
        except (OSError, TimeoutError) as exc:
            return self._redact.failure(exc)
        client = aiosmtplib.SMTP(
            hostname=self._host,  # TLS verifies this name, not the address
            sock=sock,
            username=config.auth_username,
            password=password,
            use_tls=config.tls,
            start_tls=config.require_tls and not config.tls,
            tls_context=self._tls_context,
            timeout=self._timeout_s,
        )
        try:
            try:
                await client.connect()
            except BaseException:
                sock.close()  # not yet a transport's: ours to close
                raise
            async with client:  # from here the transport owns the socket and closes it
                refused, _ = await client.send_message(message, recipients=[*config.to, *config.cc])
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
                error=self._redact(f"SMTP {exc.code}: {exc.message}"),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return SendResult(
                ok=False, failure=FailureKind.CLIENT_ERROR, error=self._redact(str(exc))
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return self._redact.failure(exc)
        if refused:
            return SendResult(
                ok=False,
                failure=FailureKind.CLIENT_ERROR,
                error=self._redact(f"recipients refused: {sorted(refused)}"),
            )
        return SendResult(ok=True, status_code=250)
