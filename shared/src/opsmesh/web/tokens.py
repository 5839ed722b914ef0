"""Bearer tokens with scopes, compared in constant time: one implementation for every
service with write endpoints (the alert-engine's API, the notifier's ``/-/reload``).

The token list is ``token:scope+scope;token2:scope`` (or lines of such entries in a
file); scopes are ``read`` and ``write`` (which implies ``read``). Only the tokens'
SHA-256 digests are kept. With no tokens configured every protected request is refused:
secure by default.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

WRITE = "write"
READ = "read"


@dataclass(frozen=True, slots=True)
class ApiTokens:
    # sha256(token) → scopes; digests keep the raw tokens out of memory dumps and logs
    digests: Mapping[bytes, frozenset[str]]

    @classmethod
    def parse(cls, spec: str) -> ApiTokens:
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
    def load(cls, spec: str | None, file: str | None) -> ApiTokens:
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


def require_scope(request: web.Request, tokens: ApiTokens, needed: str, how_to: str) -> None:
    """Raises 401 (no or unknown token; ``how_to`` says how to give one) or 403 (the
    token lacks ``needed``)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(
            text=f"this endpoint needs a bearer token with the {needed!r} scope. {how_to}",
            headers={"WWW-Authenticate": 'Bearer realm="opsmesh"'},
        )
    scopes = tokens.scopes(token.strip())
    if not scopes:
        raise web.HTTPUnauthorized(
            text=f"unknown token. {how_to}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if needed not in scopes:
        raise web.HTTPForbidden(text=f"the token lacks the {needed!r} scope")
