"""Bearer tokens with scopes for the write APIs, compared in constant time.

Tokens come from ``ALERT_ENGINE_API_TOKENS`` (``token:scope+scope;token2:scope``) or a
file of such lines. Every mutating request (POST, PUT, PATCH, DELETE) under ``/api/``
needs a token with the ``write`` scope; reads need ``read`` when
``ALERT_ENGINE_READ_REQUIRES_TOKEN`` is set. Reads that expose the configuration
(``/api/v2/status``; secrets masked all the same) need ``read`` unless
``ALERT_ENGINE_PUBLIC_STATUS`` opens them. With no tokens configured, writes (and
configuration reads) are refused: secure by default.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

WRITE = "write"
READ = "read"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Reads whose answer includes the configuration (receivers, routes, integration settings).
CONFIGURATION_READS = frozenset({"/api/v2/status"})
_AUTHENTICATED = web.AppKey("authenticated_scopes", frozenset)


@dataclass(frozen=True, slots=True)
class TokenBook:
    # sha256(token) → scopes; digests keep the raw tokens out of memory dumps and logs
    digests: Mapping[bytes, frozenset[str]]

    @classmethod
    def parse(cls, spec: str) -> TokenBook:
        digests: dict[bytes, frozenset[str]] = {}
        for entry in (e.strip() for e in spec.replace("\n", ";").split(";")):
            if not entry or entry.startswith("#"):
                continue
            token, _, scopes = entry.partition(":")
            if len(token) < 16:
                raise ValueError("API tokens must be at least 16 characters")
            names = frozenset(s.strip() for s in (scopes or "read+write").split("+") if s.strip())
            if not names <= {READ, WRITE}:
                raise ValueError(f"unknown scope(s) {sorted(names - {READ, WRITE})}")
            if WRITE in names:
                names = names | {READ}
            digests[hashlib.sha256(token.encode()).digest()] = names
        return cls(digests)

    @classmethod
    def load(cls, spec: str | None, file: str | None) -> TokenBook:
        text = spec or ""
        if file:
            text += ";" + Path(file).read_text()
        return cls.parse(text)

    def scopes(self, token: str) -> frozenset[str]:
        digest = hashlib.sha256(token.encode()).digest()
        found: frozenset[str] = frozenset()
        for known, scopes in self.digests.items():  # no early exit: constant time in position
            if hmac.compare_digest(known, digest):
                found = scopes
        return found


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# How a caller gives a token, in the 401 itself: the tools people arrive with are amtool
# (which takes HTTP client settings from a file) and opsmesh's own CLI.
HOW_TO = (
    "Send 'Authorization: Bearer <token>' (tokens: ALERT_ENGINE_API_TOKENS). amtool:"
    " --http.config.file=FILE where FILE holds 'authorization: {credentials: <token>}';"
    " opsmesh: --token <token> or $ALERT_ENGINE_TOKEN."
)


def auth_middleware(
    tokens: TokenBook, *, read_requires_token: bool, public_status: bool = False
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        protected = request.path.startswith("/api/") or request.path == "/-/reload"
        if not protected or request.match_info.http_exception:
            # Outside the API, or no such route or method (404/405): nothing to protect.
            return await handler(request)
        if request.method in _MUTATING:
            needed: str | None = WRITE
        elif read_requires_token or (request.path in CONFIGURATION_READS and not public_status):
            needed = READ
        else:
            needed = None
        if needed is None:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise web.HTTPUnauthorized(
                text=f"this endpoint needs a bearer token with the {needed!r} scope. {HOW_TO}",
                headers={"WWW-Authenticate": 'Bearer realm="opsmesh"'},
            )
        scopes = tokens.scopes(token.strip())
        if not scopes:
            raise web.HTTPUnauthorized(
                text=f"unknown token. {HOW_TO}",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if needed not in scopes:
            raise web.HTTPForbidden(text=f"the token lacks the {needed!r} scope")
        return await handler(request)

    return middleware
