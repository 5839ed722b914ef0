"""The Go renderer (built once, cached) and a real Alertmanager to compare it with."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from notifier.amtemplate.build import build
from opsmesh.devinfra.process import free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@pytest.fixture(scope="session")
def renderer_binary() -> Path:
    return build()


@dataclass
class Sink:
    """What Alertmanager sent, by case: Slack, PagerDuty and Opsgenie JSON bodies (with
    each request's method, path and Authorization header), emails."""

    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    mails: dict[str, list[EmailMessage]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_body(
        self, case: str, body: dict[str, Any], request: tuple[str, str, str] = ("", "", "")
    ) -> None:
        with self.lock:
            self.bodies.setdefault(case, []).append(body)
            self.requests.setdefault(case, []).append(request)

    def add_mail(self, case: str, mail: EmailMessage) -> None:
        with self.lock:
            self.mails.setdefault(case, []).append(mail)

    def count(self, case: str) -> int:
        with self.lock:
            return len(self.bodies.get(case, [])) + len(self.mails.get(case, []))


def _http_sink(sink: Sink) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            # Opsgenie's API paths follow the case: /og/<case>/v2/alerts...
            parts = self.path.split("?")[0].split("/")
            case = parts[2] if parts[1] == "og" else parts[-1]
            auth = self.headers.get("Authorization", "")
            sink.add_body(case, body, (self.command, self.path, auth))
            answer = b"ok" if self.path.startswith("/slack/") else b'{"status":"success"}'
            self.send_response(200 if answer == b"ok" else 202)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_PUT = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class _Mailbox:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        # The case is the recipient's local part.
        self.sink.add_mail(envelope.rcpt_tos[0].split("@")[0], parsed)
        return "250 OK"


@dataclass
class Alertmanager:
    url: str
    sink: Sink
    external_url: str

    def post(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def wait(self, cases: list[str], count: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [c for c in cases if self.sink.count(c) < count]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Alertmanager sent nothing for {missing} ({count})")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def alertmanager_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[list[dict[str, Any]], dict[str, str]], Alertmanager]]:
    """Starts Debian's Alertmanager with the given receivers (each routed by the label
    ``case``, grouped by ``alertname`` and ``case``) and template files."""
    if not os.access(ALERTMANAGER, os.X_OK):
        pytest.fail(f"{ALERTMANAGER} is missing: apt-get install prometheus-alertmanager")
    processes: list[subprocess.Popen[bytes]] = []
    servers: list[Any] = []
    logs: list[Any] = []

    def start(receivers: list[dict[str, Any]], template_files: dict[str, str]) -> Alertmanager:
        workdir = tmp_path_factory.mktemp("alertmanager")
        sink = Sink()
        http_server, http_port = _http_sink(sink)
        smtp = Controller(_Mailbox(sink), hostname="127.0.0.1", port=free_port())
        smtp.start()
        servers.extend([http_server, smtp])
        for name, text in template_files.items():
            (workdir / name).write_text(text)
        wired = []
        for given in receivers:
            receiver = json.loads(json.dumps(given))  # a copy
            for slack in receiver.get("slack_configs", []):
                slack["api_url"] = f"http://127.0.0.1:{http_port}/slack/{receiver['name']}"
            for pd in receiver.get("pagerduty_configs", []):
                pd["url"] = f"http://127.0.0.1:{http_port}/pd/{receiver['name']}"
            for og in receiver.get("opsgenie_configs", []):
                og["api_url"] = f"http://127.0.0.1:{http_port}/og/{receiver['name']}/"
            for mail in receiver.get("email_configs", []):
                mail["to"] = f"{receiver['name']}@example.com"
                mail["from"] = "alertmanager@example.com"
                mail["smarthost"] = f"127.0.0.1:{smtp.port}"
                mail["require_tls"] = False
            wired.append(receiver)
        config = {
            "templates": ["*.tmpl"],
            "route": {
                "receiver": "null",
                "group_by": ["alertname", "case"],
                "group_wait": "50ms",
                "group_interval": "1s",
                "repeat_interval": "1h",
                "routes": [
                    {"matchers": [f'case="{r["name"]}"'], "receiver": r["name"]} for r in wired
                ],
            },
            "receivers": [{"name": "null"}, *wired],
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        external = "http://am.example.com:9093"
        log = (workdir / "alertmanager.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url={external}",
                "--cluster.listen-address=",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TZ": "UTC"},
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "Alertmanager did not start: "
                    + (workdir / "alertmanager.log").read_text()[-2000:]
                )
            time.sleep(0.05)
        return Alertmanager(url, sink, external)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for log in logs:
        log.close()
    for server in servers:
        if isinstance(server, Controller):
            server.stop()
        else:
            server.shutdown()
            server.server_close()
