"""The view decorators' rules without a framework: which requests use the cache, the key,
which responses are stored and for how long, and what a hit replays."""

from __future__ import annotations

import base64

import pytest

from opsmesh_client.cache import CacheError, Loaded, Namespace
from opsmesh_client.cache.http_views import (
    PASS,
    Header,
    Skip,
    ViewPolicy,
    is_response,
    matches,
    normal_query,
    replay,
)

NS = Namespace("pages", ttl_s=60)
NOW = 1_000_000.0


def headers(**values: str) -> Header:
    lower = {name.replace("_", "-").lower(): value for name, value in values.items()}
    return lower.get


def store(
    policy: ViewPolicy, status: int, response_headers: list[tuple[str, str]], body: bytes = b"x"
) -> tuple[Loaded, Skip | None]:
    return policy.store(NS, status, response_headers, body, header=headers(), now=NOW)


def test_only_get_and_head_without_credentials_use_the_cache() -> None:
    policy = ViewPolicy.of(NS)
    assert policy.bypass("GET", headers()) is None
    assert policy.bypass("HEAD", headers()) is None
    assert policy.bypass("POST", headers()) is Skip.METHOD
    assert policy.bypass("GET", headers(authorization="Bearer t")) is Skip.AUTHORIZATION
    assert policy.bypass("GET", headers(cookie="sid=1")) is Skip.COOKIE
    opted = ViewPolicy.of(NS, allow_authorization=True, allow_cookies=True)
    assert opted.bypass("GET", headers(authorization="Bearer t", cookie="sid=1")) is None


def test_the_key_ignores_parameter_order_across_names_and_varies_on_declared_headers() -> None:
    policy = ViewPolicy.of(NS, vary=("Accept-Language",))
    key = policy.key("https", "Shop.Example", "/p", "b=2&a=1&a=0", headers(accept_language="fr"))
    assert key == policy.key(
        "https", "shop.example", "/p", "a=1&a=0&b=2", headers(accept_language="fr")
    )
    assert key != policy.key(
        "https", "shop.example", "/p", "a=0&a=1&b=2", headers(accept_language="fr")
    )
    assert key != policy.key(
        "https", "shop.example", "/p", "a=1&a=0&b=2", headers(accept_language="de")
    )
    assert key != policy.key("https", "shop.example", "/p", "a=1&a=0&b=2", headers())
    assert key != policy.key(
        "http", "shop.example", "/p", "a=1&a=0&b=2", headers(accept_language="fr")
    )
    assert normal_query("b=&a=1") == "a=1&b="


@pytest.mark.parametrize(
    ("status", "response_headers", "body", "skip"),
    [
        (500, [], b"x", Skip.STATUS),
        (206, [], b"x", Skip.STATUS),
        (200, [("Set-Cookie", "sid=1")], b"x", Skip.SET_COOKIE),
        (200, [("Cache-Control", "private, max-age=60")], b"x", Skip.PRIVATE),
        (200, [("cache-control", "no-store")], b"x", Skip.NO_STORE),
        (200, [("Cache-Control", "no-cache")], b"x", Skip.NO_CACHE),
        (200, [("Cache-Control", "max-age=0")], b"x", Skip.EXPIRED),
        (200, [("Cache-Control", "max-age=junk")], b"x", Skip.EXPIRED),
        (200, [("Expires", "0")], b"x", Skip.EXPIRED),
        (200, [("Vary", "Accept, *")], b"x", Skip.VARY_STAR),
        (200, [], b"x" * 11, Skip.TOO_LARGE),
        (200, [], None, Skip.STREAMING),
    ],
)
def test_what_is_not_stored_leaves_a_short_pass_mark(
    status: int, response_headers: list[tuple[str, str]], body: bytes | None, skip: Skip
) -> None:
    policy = ViewPolicy.of(NS, max_body_bytes=10, pass_ttl_s=3)
    loaded, why = policy.store(NS, status, response_headers, body, header=headers(), now=NOW)
    assert why is skip
    assert loaded == Loaded(PASS, 3)
    assert not is_response(loaded.value)


def test_the_ttl_is_the_namespace_s_shortened_by_the_response_s_own_freshness() -> None:
    policy = ViewPolicy.of(NS)
    assert store(policy, 200, [])[0].ttl_s == 60
    assert store(policy, 404, [])[0].ttl_s == 60
    assert store(policy, 200, [("Cache-Control", "public, max-age=600")])[0].ttl_s == 60
    assert store(policy, 200, [("Cache-Control", "max-age=20")])[0].ttl_s == 20
    assert store(policy, 200, [("Cache-Control", "max-age=20, s-maxage=5")])[0].ttl_s == 5
    assert store(policy, 200, [("Cache-Control", "max-age=20"), ("Age", "15")])[0].ttl_s == 5
    expires = [
        ("Date", "Sun, 06 Dec 2026 12:00:00 GMT"),
        ("Expires", "Sun, 06 Dec 2026 12:00:30 GMT"),
    ]
    assert store(policy, 200, expires)[0].ttl_s == 30
    assert store(ViewPolicy.of(NS, ttl_s=10), 200, [])[0].ttl_s == 10


def test_a_hit_replays_status_headers_body_and_its_age() -> None:
    policy = ViewPolicy.of(NS)
    loaded, why = store(
        policy,
        203,
        [("Content-Type", "text/plain"), ("Connection", "close"), ("Age", "2")],
        b"hello",
    )
    assert why is None
    assert base64.b64decode(loaded.value["b"]) == b"hello"
    status, replayed, body = replay(loaded.value, NOW + 10.7, head=False)
    assert (status, body) == (203, b"hello")
    assert replayed == [("Content-Type", "text/plain"), ("Age", "12")]  # 2 at the origin
    _, head_headers, head_body = replay(loaded.value, NOW, head=True)
    assert head_body == b""
    assert ("Content-Length", "5") in head_headers


def test_a_response_varying_on_an_undeclared_header_matches_only_its_values() -> None:
    policy = ViewPolicy.of(NS, vary=("accept-language",))
    loaded, _ = policy.store(
        NS,
        200,
        [("Vary", "Accept-Language, X-Theme")],
        b"x",
        header=headers(x_theme="dark"),
        now=NOW,
    )
    assert loaded.value["m"] == {"x-theme": "dark"}  # the declared one is in the key
    assert matches(loaded.value, headers(x_theme="dark", accept_language="fr"))
    assert not matches(loaded.value, headers(x_theme="light"))
    assert not matches(loaded.value, headers())


def test_a_namespace_with_refresh_ahead_is_refused() -> None:
    with pytest.raises(CacheError):
        ViewPolicy.of(Namespace("hot", refresh_ahead=0.2))
