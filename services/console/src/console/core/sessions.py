"""Console sessions: a login with a token opens one; its id travels in an HttpOnly,
SameSite cookie and its CSRF token in every form the console renders.

Sessions live in this process's memory: a restart logs everyone out, which for a
console of one replica is the honest, simple choice (nothing to store, nothing to leak).
The token itself stays here, to be sent to the alert-engine with the session's writes.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from opsmesh.clock import Clock
from opsmesh.web.tokens import WRITE

# Past this many open sessions the oldest goes first: a login flood cannot grow memory.
MAX_SESSIONS = 10_000


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    token: str
    scopes: frozenset[str]
    csrf: str
    expires_at: float

    @property
    def can_write(self) -> bool:
        return WRITE in self.scopes

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(self.csrf.encode(), sent.encode())


class Sessions:
    def __init__(self, clock: Clock, ttl_s: float, secret: Callable[[], str] = new_secret) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._secret = secret
        self._open: dict[str, Session] = {}

    def open(self, token: str, scopes: frozenset[str]) -> Session:
        while len(self._open) >= MAX_SESSIONS:
            self._open.pop(next(iter(self._open)))
        session = Session(
            id=self._secret(),
            token=token,
            scopes=scopes,
            csrf=self._secret(),
            expires_at=self._clock.now() + self._ttl_s,
        )
        self._open[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._open.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock.now():
            del self._open[session_id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._open.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._open)
