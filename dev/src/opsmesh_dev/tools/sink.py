"""A webhook sink: receives notifier webhooks, verifies Standard Webhooks signatures when
given secrets, keeps them in memory and appends them to a JSON-lines file."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

RECEIVED_KEY = web.AppKey("received", list)


@dataclass
class SinkState:
    out_file: Path | None = None
    secrets: tuple[str, ...] = ()
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    arrived: asyncio.Condition | None = None


def sink_app(state: SinkState) -> web.Application:
    verifiers = [Webhook(secret) for secret in state.secrets]

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if verifiers:
            headers = dict(request.headers)
            if not any(_verifies(v, body, headers, WebhookVerificationError) for v in verifiers):
                state.rejected += 1
                return web.json_response({"error": "bad signature"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        entry = {
            "hook": request.match_info.get("name", ""),
            "webhook_id": request.headers.get("webhook-id"),
            "traceparent": request.headers.get("traceparent"),  # the notification's trace
            "payload": payload,
        }
        state.received.append(entry)
        if state.out_file is not None:
            with state.out_file.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")
        if state.arrived is not None:
            async with state.arrived:
                state.arrived.notify_all()
        return web.json_response({"ok": True})

    async def listing(_: web.Request) -> web.Response:
        return web.json_response(state.received)

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[RECEIVED_KEY] = state.received
    app.router.add_post("/hooks/{name}", receive)
    app.router.add_get("/hooks", listing)
    return app


def _verifies(verifier: Any, body: bytes, headers: dict[str, str], error: type[Exception]) -> bool:
    try:
        verifier.verify(body, headers)
    except error:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description="opsmesh webhook sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--secret", action="append", default=[])
    args = parser.parse_args()
    state = SinkState(out_file=args.out, secrets=tuple(args.secret))
    web.run_app(sink_app(state), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
