"""EmailChannel against a real SMTP server (aiosmtpd) with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
import gc
import threading
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from notifier.channels.email import EmailChannel
from notifier.core.retry import FailureKind
from notifier.core.summary import Transition, summarise
from notifier.core.targets import TargetPolicy
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from notifier.summary.job import send_summary
from opsmesh.events.alerts import AlertStatus
from opsmesh_dev.infra.process import free_port

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])


@dataclass
class Mailbox:
    port: int
    reply: str = "250 Message accepted for delivery"
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    open_connections: int = 0  # counted by the server thread
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.reply.startswith("250"):
            return self.reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return self.reply


class _CountedSMTP(SMTP):
    """The server side of one connection, telling the mailbox when it ends."""

    def __init__(self, box: Mailbox, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._box = box

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        with self._box.lock:
            self._box.open_connections -= 1


class _CountingController(Controller):  # type: ignore[misc]
    def __init__(self, box: Mailbox, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._box = box

    def factory(self) -> SMTP:
        with self._box.lock:
            self._box.open_connections += 1
        return _CountedSMTP(self._box, self.handler, **self.SMTP_kwargs)


@pytest.fixture
async def mailbox(certs: Any) -> AsyncIterator[Mailbox]:
    box = Mailbox(port=free_port())

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    controller = _CountingController(
        box,
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=certs.server_context(),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield box
        # A client's TLS connection finishes closing after its last reply; wait for that
        # in this test's loop, so no socket is left to a later garbage collection.
        deadline = time.monotonic() + 10
        while box.open_connections > 0:
            assert time.monotonic() < deadline, "an SMTP client connection was never closed"
            await asyncio.sleep(0.01)  # polling interval of the condition wait
    finally:
        controller.stop()


def channel(mailbox: Mailbox, certs: Any, **overrides: Any) -> EmailChannel:
    config = {
        "to": ["oncall@example.com"],
        "cc": ["lead@example.com"],
        "from": "opsmesh@example.com",
        "smarthost": f"127.0.0.1:{mailbox.port}",
        "auth_username": "opsmesh",
        "auth_password": "s3cret",
        "require_tls": True,
        **overrides,
    }
    receiver = parse_receivers({"receivers": [{"name": "ops", "email_configs": [config]}]})["ops"]
    return EmailChannel(
        name="email-0",
        config=receiver.email_configs[0],
        policy=LOOPBACK,
        timeout_s=5.0,
        tls_context=certs.client_context(),
    )


async def test_sends_html_and_text_over_starttls_with_auth(mailbox: Mailbox, certs: Any) -> None:
    result = await channel(mailbox, certs).send(sample_request("ops", key="k-mail-1"))
    assert result.ok, result
    assert mailbox.logins == ["opsmesh"]
    [(sender, rcpts, message)] = mailbox.messages
    assert sender == "opsmesh@example.com"
    assert sorted(rcpts) == ["lead@example.com", "oncall@example.com"]
    assert message["To"] == "oncall@example.com"
    assert message["Cc"] == "lead@example.com"
    assert message["Subject"] == "[FIRING:1] DiskAlmostFull service=checkout"
    assert message["X-Opsmesh-Idempotency-Key"] == "k-mail-1"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    # Labels are outside input: escaped in HTML, verbatim in text.
    assert "Disk &lt;sda1&gt; is 97% full &amp; climbing" in html.get_content()
    assert "<sda1>" not in html.get_content()
    assert "Disk <sda1> is 97% full & climbing" in text.get_content()
    assert "https://runbooks.example.com/disk-almost-full" in text.get_content()


async def test_user_templates_render_in_the_sandbox(mailbox: Mailbox, certs: Any) -> None:
    result = await channel(
        mailbox,
        certs,
        subject="{{ status }}: {{ commonLabels.service }} ({{ alerts | length }})",
        text="{{ commonAnnotations.summary }}",
        html="<p>{{ commonAnnotations.summary }}</p>",
    ).send(sample_request("ops", status=AlertStatus.RESOLVED))
    assert result.ok, result
    [(_, _, message)] = mailbox.messages
    assert message["Subject"] == "resolved: checkout (1)"
    html = message.get_body(("html",))
    assert html is not None
    assert "<p>Disk &lt;sda1&gt;" in html.get_content()


async def test_a_template_that_escapes_the_sandbox_is_a_permanent_failure(
    mailbox: Mailbox, certs: Any
) -> None:
    result = await channel(
        mailbox, certs, subject="{{ ''.__class__.__mro__[1].__subclasses__() }}"
    ).send(sample_request("ops"))
    assert not result.ok
    assert result.failure is FailureKind.TEMPLATE
    assert not result.failure.retryable
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("451 4.3.0 Try again later", FailureKind.SERVER_ERROR),
        ("554 5.7.1 Rejected", FailureKind.CLIENT_ERROR),
    ],
)
async def test_smtp_replies_are_classified(
    mailbox: Mailbox, certs: Any, reply: str, kind: FailureKind
) -> None:
    mailbox.reply = reply
    result = await channel(mailbox, certs).send(sample_request("ops"))
    assert result.failure is kind
    assert result.failure.retryable is (kind is FailureKind.SERVER_ERROR)


async def test_wrong_password_is_not_retried(mailbox: Mailbox, certs: Any) -> None:
    result = await channel(mailbox, certs, auth_password="wrong").send(sample_request("ops"))
    assert result.failure is FailureKind.CLIENT_ERROR
    assert "s3cret" not in repr(result)
    assert "wrong" not in repr(result)


async def test_an_untrusted_certificate_is_refused(mailbox: Mailbox, certs: Any) -> None:
    receiver = parse_receivers(
        {
            "receivers": [
                {
                    "name": "ops",
                    "email_configs": [
                        {
                            "to": ["a@example.com"],
                            "from": "o@example.com",
                            "smarthost": f"127.0.0.1:{mailbox.port}",
                        }
                    ],
                }
            ]
        }
    )["ops"]
    # The system trust store does not know the test CA: verification is on by default.
    plain = EmailChannel(
        name="email-0", config=receiver.email_configs[0], policy=LOOPBACK, timeout_s=5.0
    )
    with warnings.catch_warnings():
        # asyncio's start_tls (CPython 3.11) leaves the plain socket of a failed TLS
        # handshake to the garbage collector; collect it here, inside this test, so its
        # ResourceWarning cannot surface in whichever test happens to run a collection.
        warnings.simplefilter("ignore", ResourceWarning)
        result = await plain.send(sample_request("ops"))
        gc.collect()
    assert result.failure is FailureKind.NETWORK
    assert mailbox.messages == []


async def test_the_daily_summary_is_sent_as_html_and_text(mailbox: Mailbox, certs: Any) -> None:
    summary = summarise(
        [
            Transition("f1", "DiskFull", "inactive", "firing", 1_000.0),
            Transition("f1", "DiskFull", "firing", "resolved", 1_600.0),
            Transition("f2", "<b>Cpu</b>", "inactive", "firing", 2_000.0),
        ],
        start=0.0,
        end=86_400.0,
    )
    await send_summary(
        summary,
        host="127.0.0.1",
        port=mailbox.port,
        sender="opsmesh@example.com",
        recipients=["sre@example.com", "lead@example.com"],
        username="opsmesh",
        password="s3cret",
        start_tls=True,
        tls_context=certs.client_context(),
        timeout_s=5.0,
    )
    [(sender, rcpts, message)] = mailbox.messages
    assert (sender, rcpts) == ("opsmesh@example.com", ["sre@example.com", "lead@example.com"])
    assert message["Subject"] == "opsmesh daily summary: 2 opened, 1 resolved"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "DiskFull" in text
    assert "&lt;b&gt;Cpu&lt;/b&gt;" in html, "rule names are escaped in the HTML part"
    assert "<b>Cpu</b>" not in html
