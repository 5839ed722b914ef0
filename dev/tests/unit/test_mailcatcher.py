"""The compose stack's mail catcher: a real SMTP conversation (stdlib smtplib) in, the
message out on the web page and as JSON."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

import aiohttp

from opsmesh_dev.infra.process import free_port
from opsmesh_dev.tools.mailcatcher import MAX_MESSAGES, Mailbox, serve


def _send(port: int, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "opsmesh@example.com"
    message["To"] = "oncall@example.com"
    message["Subject"] = subject
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message)


async def _until_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on {port}")


async def test_an_email_sent_over_smtp_is_listed_on_the_page_and_as_json() -> None:
    smtp_port, http_port = free_port(), free_port()
    server = asyncio.create_task(serve("127.0.0.1", smtp_port, http_port))
    try:
        await _until_listening(http_port)
        await asyncio.to_thread(_send, smtp_port, "[FIRING:1] <DiskFull>", "disk is full")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{http_port}/api/messages") as response:
                (message,) = await response.json()
            async with session.get(f"http://127.0.0.1:{http_port}/") as response:
                page = await response.text()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    assert message["mail_from"] == "opsmesh@example.com"
    assert message["rcpt_to"] == ["oncall@example.com"]
    assert message["subject"] == "[FIRING:1] <DiskFull>"
    assert message["text"].strip() == "disk is full"
    assert message["html"].strip() == "<p>disk is full</p>"
    # The subject is escaped on the page, not injected as markup.
    assert "[FIRING:1] &lt;DiskFull&gt;" in page
    assert "<DiskFull>" not in page


def test_the_mailbox_keeps_only_the_newest_messages() -> None:
    mailbox = Mailbox()

    class Envelope:
        mail_from = "a@example.com"
        rcpt_tos = ("b@example.com",)
        content = b""

        def __init__(self, n: int) -> None:
            self.original_content = f"Subject: m{n}\r\n\r\nbody\r\n".encode()

    for n in range(MAX_MESSAGES + 5):
        mailbox.keep(Envelope(n))  # type: ignore[arg-type]
    assert len(mailbox.messages) == MAX_MESSAGES
    assert mailbox.messages[0]["subject"] == "m5"
    assert mailbox.messages[-1]["subject"] == f"m{MAX_MESSAGES + 4}"
