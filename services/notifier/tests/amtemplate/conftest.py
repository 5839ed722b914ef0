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
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from notifier.amtemplate.build import build
from opsmesh_dev.infra.process import free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@pytest.fixture(scope="session")
def renderer_binary() -> Path:
    return build()


@dataclass
class Sink:
    """What was sent, by case: Slack, PagerDuty, Opsgenie and webhook JSON bodies (with
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


def http_sink(sink: Sink) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            # The case is the last path segment, quoted (receiver names may hold any
            # text); Opsgenie's API paths follow it: /og/<case>/v2/alerts...
            parts = self.path.split("?")[0].split("/")
            case = urllib.parse.unquote(parts[2] if parts[1] == "og" else parts[-1])
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
    config: str  # the configuration it runs, as YAML

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


def _ready(url: str, process: subprocess.Popen[bytes], token: str, timeout_s: float) -> bool:
    """Whether the Alertmanager started as ``process`` serves ``url`` (its status shows the
    configuration holding ``token``); False once it has exited."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/status", timeout=1) as response:
                status = json.loads(response.read())
            if token in status["config"]["original"]:
                return True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"Alertmanager at {url} not ready within {timeout_s} s")
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def alertmanager_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Alertmanager]]:
    """Starts Debian's Alertmanager with the given receivers (each routed by the label
    ``case``, grouped by ``alertname`` and ``case``) and template files.

    ``group_wait``: Alertmanager flushes a new group at once when an alert inserted into
    it started more than ``group_wait`` ago, racing the insertion of the rest of the same
    POST; a test that needs all of a POST's alerts in the first notification posts alerts
    younger than a ``group_wait`` long enough to insert them all."""
    if not os.access(ALERTMANAGER, os.X_OK):
        pytest.fail(f"{ALERTMANAGER} is missing: apt-get install prometheus-alertmanager")
    processes: list[subprocess.Popen[bytes]] = []
    servers: list[Any] = []
    logs: list[Any] = []

    def start(
        receivers: list[dict[str, Any]], template_files: dict[str, str], group_wait: str = "50ms"
    ) -> Alertmanager:
        workdir = tmp_path_factory.mktemp("alertmanager")
        # Unique to this start: readiness is asked of this Alertmanager, not of whichever
        # process answers on the port.
        null_receiver = f"null-{uuid.uuid4().hex[:12]}"
        sink = Sink()
        http_server, http_port = http_sink(sink)
        smtp = Controller(_Mailbox(sink), hostname="127.0.0.1", port=free_port())
        smtp.start()
        servers.extend([http_server, smtp])
        for name, text in template_files.items():
            (workdir / name).write_text(text)
        wired = []
        for given in receivers:
            receiver = json.loads(json.dumps(given))  # a copy
            case = urllib.parse.quote(receiver["name"], safe="")
            for slack in receiver.get("slack_configs", []):
                slack["api_url"] = f"http://127.0.0.1:{http_port}/slack/{case}"
            for pd in receiver.get("pagerduty_configs", []):
                pd["url"] = f"http://127.0.0.1:{http_port}/pd/{case}"
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = f"http://127.0.0.1:{http_port}/hook/{case}"
            for og in receiver.get("opsgenie_configs", []):
                og["api_url"] = f"http://127.0.0.1:{http_port}/og/{case}/"
            for mail in receiver.get("email_configs", []):
                mail["to"] = f"{receiver['name']}@example.com"
                mail["from"] = "alertmanager@example.com"
                mail["smarthost"] = f"127.0.0.1:{smtp.port}"
                mail["require_tls"] = False
            wired.append(receiver)
        config = {
            "templates": ["*.tmpl"],
            "route": {
                "receiver": null_receiver,
                "group_by": ["alertname", "case"],
                "group_wait": group_wait,
                "group_interval": "1s",
                "repeat_interval": "1h",
                "routes": [
                    {"matchers": [f'case="{r["name"]}"'], "receiver": r["name"]} for r in wired
                ],
            },
            "receivers": [{"name": null_receiver}, *wired],
        }
        config_text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        (workdir / "alertmanager.yml").write_text(config_text, encoding="utf-8")
        external = "http://am.example.com:9093"
        log_path = workdir / "alertmanager.log"
        for attempt in range(3):
            # A port found free can be taken before Alertmanager binds it (other test
            # processes run beside this one): a bind failure is retried on another port.
            port = free_port()
            log = log_path.open("wb")
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
            if _ready(url, process, null_receiver, timeout_s=30.0):
                return Alertmanager(url, sink, external, config_text)
            text = log_path.read_text()
            if "address already in use" not in text or attempt == 2:
                raise AssertionError(f"Alertmanager did not start: {text[-2000:]}")
        raise AssertionError("unreachable")

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
