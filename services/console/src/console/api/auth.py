"""Login with a token, the session cookie, CSRF on every form post, security headers.

- The session id travels in an HttpOnly, SameSite=Strict cookie; the session (and the
  token, forwarded to the alert-engine with writes) stays in the console's memory.
- Every POST but the login carries the session's CSRF token (a form field, or the
  ``X-CSRF-Token`` header htmx sends); the login form is protected by a double-submit
  cookie, since there is no session yet. A post whose ``Origin`` is another site is
  refused before anything else.
- Writes need a session whose token has the ``write`` scope; others see no write controls.
- The theme switch (``POST /theme``) needs no session: it only sets the viewer's own
  theme cookie, and a post from another site is still refused by its ``Origin``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from console.bootstrap import SERVICES
from console.core.sessions import Session, new_secret
from console.core.theme import Theme, theme_of
from console.rendering import html

SESSION_COOKIE = "opsmesh_console"
LOGIN_CSRF_COOKIE = "opsmesh_console_login"
THEME_COOKIE = "opsmesh_console_theme"
THEME_MAX_AGE_S = 365 * 86_400
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION = web.RequestKey("console_session", Session)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

# The service kit's probes and metrics: no session to look up.
_PROBES = frozenset({"/health/live", "/health/ready", "/metrics"})
# Posts without a session's CSRF token: the login (a double-submit cookie instead) and the
# theme switch (it changes nothing but the viewer's own theme cookie).
_SESSIONLESS_POSTS = frozenset({"/login", "/theme"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_of(request: web.Request) -> Session | None:
    return request.get(SESSION)


def context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every page's template gets: the session, its CSRF token, whether to show
    write controls, and the path for the navigation."""
    session = session_of(request)
    return {
        "session": session,
        "csrf": session.csrf if session else "",
        "can_write": bool(session and session.can_write),
        "path": request.path,
        "here": request.path_qs,  # where the theme switch comes back to
        "theme": theme_of(request.cookies.get(THEME_COOKIE)),
        "themes": list(Theme),
        **values,
    }


def require_writer(request: web.Request) -> Session:
    session = session_of(request)
    if session is None:
        raise web.HTTPSeeOther(f"/login?next={request.path}")
    if not session.can_write:
        raise web.HTTPForbidden(text="your token has no write scope")
    return session


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _headers(response)
        raise
    _headers(response)
    return response


def _headers(response: web.StreamResponse) -> None:
    if response.prepared:  # a stream (server-sent events) sent its headers already
        return
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every POST; its absence means a non-browser client,
        # which holds no victim's cookie. "null" (a sandboxed or opaque origin) is not us.
        return origin is None
    return origin == f"{request.scheme}://{request.host}"


@web.middleware
async def sessions_and_csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/static/") or request.path in _PROBES:
        return await handler(request)
    services = request.app[SERVICES]
    session = services.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        request[SESSION] = session
    if request.method == "POST":
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin form post refused")
        if request.path not in _SESSIONLESS_POSTS:
            form = await request.post()
            sent = request.headers.get(CSRF_HEADER) or _text(form.get(CSRF_FIELD))
            if session is None:
                raise web.HTTPForbidden(text="log in first (no session)")
            if not session.csrf_matches(sent):
                raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")
    return await handler(request)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _local(target: str | None) -> str:
    """Only a path on this console: never another host (``//evil``, ``/\\evil``)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/alerts"


async def login_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    login_csrf = new_secret()
    response = html(
        services.templates,
        "login.html",
        **context(request, next=_local(request.query.get("next")), login_csrf=login_csrf),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        login_csrf,
        httponly=True,
        samesite="Strict",
        secure=services.settings.cookie_secure,
        path="/login",
        max_age=3600,
    )
    return response


async def login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = await request.post()
    sent = _text(form.get(CSRF_FIELD))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not sent or not cookie or not _equal(sent, cookie):
        raise web.HTTPForbidden(text="the login form expired; reload it")
    token = (_text(form.get("token")) or "").strip()
    scopes = services.tokens.scopes(token) if token else frozenset()
    target = _local(_text(form.get("next")))
    if not scopes:
        return html(
            services.templates,
            "login.html",
            status=401,
            **context(request, next=target, login_csrf=cookie, error="unknown token"),
        )
    services.sessions.close(request.cookies.get(SESSION_COOKIE))  # no fixation of an old id
    session = services.sessions.open(token, scopes)
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        httponly=True,
        samesite="Strict",
        secure=services.settings.cookie_secure,
        path="/",
        max_age=int(services.settings.session_ttl_s),
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    services.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = web.HTTPSeeOther("/alerts")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def set_theme(request: web.Request) -> web.Response:
    """Remember the chosen theme (a year) and go back to the page it was chosen on."""
    services = request.app[SERVICES]
    form = await request.post()
    try:
        theme = Theme(_text(form.get("theme")) or "")
    except ValueError:
        raise web.HTTPBadRequest(text="theme must be system, light or dark") from None
    response = web.HTTPSeeOther(_local(_text(form.get("next"))))
    if theme is Theme.SYSTEM:
        response.del_cookie(THEME_COOKIE, path="/")
    else:
        response.set_cookie(
            THEME_COOKIE,
            theme.value,
            httponly=True,
            samesite="Lax",
            secure=services.settings.cookie_secure,
            path="/",
            max_age=THEME_MAX_AGE_S,
        )
    raise response


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def register(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/theme", set_theme)
