"""A mail catcher for the compose stack: an SMTP server (aiosmtpd) that keeps every message
it is sent in memory, and a web page listing them (``/``, newest first) with the same as
JSON (``/api/messages``). Nothing is delivered anywhere; it is for development only."""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

# Oldest messages are dropped past this, so a long-running demo does not grow without bound.
MAX_MESSAGES = 1000


@dataclass
class Mailbox:
    messages: list[dict[str, Any]] = field(default_factory=list)

    def keep(self, envelope: Envelope) -> dict[str, Any]:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        entry = {
            "received_at": datetime.now(UTC).isoformat(),
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            "subject": str(parsed.get("Subject", "")),
            "from": str(parsed.get("From", "")),
            "to": str(parsed.get("To", "")),
            "text": _body(parsed, "plain"),
            "html": _body(parsed, "html"),
        }
        self.messages.append(entry)
        del self.messages[:-MAX_MESSAGES]
        return entry


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


class _Handler:
    """aiosmtpd's handler protocol: called once per message with its envelope."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    # aiosmtpd calls handle_DATA by this name.
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mailbox.keep(envelope)
        return "250 Message accepted"


def web_app(mailbox: Mailbox) -> web.Application:
    async def listing(_: web.Request) -> web.Response:
        return web.json_response(mailbox.messages)

    async def page(_: web.Request) -> web.Response:
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><details><summary>{}</summary>"
            "<pre>{}</pre></details></td></tr>".format(
                *(
                    html.escape(str(v))
                    for v in (
                        m["received_at"],
                        m["from"],
                        m["to"],
                        m["subject"],
                        m["text"] or m["html"],
                    )
                )
            )
            for m in reversed(mailbox.messages)
        )
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>opsmesh mail catcher"
            "</title><meta http-equiv='refresh' content='10'></head><body>"
            f"<h1>opsmesh mail catcher</h1><p>{len(mailbox.messages)} message(s); newest "
            "first; this page reloads every 10 s. JSON: <a href='/api/messages'>"
            "/api/messages</a></p><table border='1' cellpadding='4'><tr><th>received</th>"
            f"<th>from</th><th>to</th><th>subject</th></tr>{rows}</table></body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/api/messages", listing)
    return app


async def serve(host: str, smtp_port: int, http_port: int) -> None:
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(_Handler(mailbox), hostname="mailcatcher"), host=host, port=smtp_port
    )
    runner = web.AppRunner(web_app(mailbox), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()
    try:
        await asyncio.Event().wait()  # until the process is stopped
    finally:
        smtp.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="opsmesh mail catcher (SMTP + web page)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.smtp_port, args.http_port))


if __name__ == "__main__":
    main()
