"""An integration's ``http_config`` as request options: credentials and TLS.

Alertmanager sends an integration's requests with prometheus/common's HTTP client
configured by ``http_config``; here the same settings become the ``Authorization`` header
and an SSL context for each request. The session's connector still applies the target
policy (SSRF) on every connection; a per-request SSL context does not bypass it.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from notifier.channels.base import SendResult
from notifier.core.retry import classify_status, retry_after_s
from notifier.receivers.config import HTTPConfig, TLSConfig

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class HttpOptions:
    headers: dict[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    # Values to keep out of logs and errors (credentials).
    secrets: tuple[str, ...] = ()

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiohttp.ClientSession.post``."""
        kwargs: dict[str, Any] = {}
        if self.ssl_context is not None:
            kwargs["ssl"] = self.ssl_context
        if self.server_hostname:
            kwargs["server_hostname"] = self.server_hostname
        return kwargs


async def http_answer(
    response: aiohttp.ClientResponse, what: str, redact: Callable[[str], str], now: float
) -> SendResult:
    """An integration's HTTP answer as a send result: 2xx sent; otherwise its class
    (``classify_status``), the start of the body naming ``what`` answered (redacted), and
    ``Retry-After``."""
    text = await response.text(errors="replace")
    failure = classify_status(response.status)
    if failure is None:
        return SendResult(ok=True, status_code=response.status)
    return SendResult(
        ok=False,
        status_code=response.status,
        failure=failure,
        error=redact(f"{what} answered {response.status}: {text[:200]}"),
        retry_after_s=retry_after_s(response.headers.get("Retry-After"), now),
    )


def http_options(config: HTTPConfig | None) -> HttpOptions:
    if config is None:
        return HttpOptions()
    headers: dict[str, str] = {}
    secrets: list[str] = []
    if config.basic_auth is not None:
        password = (
            config.basic_auth.password.get_secret_value() if config.basic_auth.password else ""
        )
        pair = f"{config.basic_auth.username}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        secrets.append(password)
    elif config.authorization is not None and config.authorization.credentials is not None:
        credentials = config.authorization.credentials.get_secret_value()
        headers["Authorization"] = f"{config.authorization.type or 'Bearer'} {credentials}"
        secrets.append(credentials)
    elif config.bearer_token is not None:
        token = config.bearer_token.get_secret_value()
        headers["Authorization"] = f"Bearer {token}"
        secrets.append(token)
    tls = config.tls_config
    return HttpOptions(
        headers=headers,
        ssl_context=_ssl_context(tls) if tls is not None else None,
        server_hostname=tls.server_name if tls is not None else None,
        secrets=tuple(s for s in secrets if s),
    )


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if tls.ca_file:
        context.load_verify_locations(cafile=tls.ca_file)
    if tls.ca:
        context.load_verify_locations(cadata=tls.ca)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    elif tls.cert and tls.key is not None:
        _load_inline_chain(context, tls.cert, tls.key.get_secret_value())
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.min_version in _TLS_VERSIONS:
        context.minimum_version = _TLS_VERSIONS[tls.min_version]
    if tls.max_version in _TLS_VERSIONS:
        context.maximum_version = _TLS_VERSIONS[tls.max_version]
    return context


def _load_inline_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    """``ssl`` loads a chain from files only: a private directory, removed at once."""
    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert_path.write_text(cert)
        key_path.touch(mode=0o600)
        key_path.write_text(key)
        context.load_cert_chain(cert_path, key_path)
