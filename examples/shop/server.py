"""The shop served over HTTP: its WSGI application under the standard library's WSGI
server, one thread per request (the SDK profiles a request on its thread with pyinstrument).
SIGTERM or SIGINT stops it; the SDK flushes what it holds at exit."""

from __future__ import annotations

import os
import signal
import socketserver
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
from django.core.management import call_command
from django.db import connections

import opsmesh_client


class Stopped(Exception):
    """SIGTERM or SIGINT: stop serving."""


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """Logs failures only: the load generator's steady stream of requests is not news."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith("5"):
            super().log_request(code, size)


def migrate() -> None:
    """Create and fill the shop's tables (Django's migrations: idempotent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.shop.settings")
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    connections.close_all()


def serve(host: str, port: int) -> None:
    migrate()
    from examples.shop.wsgi import application  # noqa: PLC0415 - after the migration

    server = make_server(
        host, port, application, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )

    def stop(signum: int, _: Any) -> None:
        # Out of serve_forever by an exception: shutdown() waits for it to return (never
        # from its own thread), and a thread started here could wait on a lock that the
        # interrupted code holds.
        raise Stopped

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"shop serving on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except Stopped:
        pass
    finally:
        server.server_close()
        opsmesh_client.shutdown()
