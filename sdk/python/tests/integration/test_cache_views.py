"""The view decorators over a real Redis: a Django site through Django's test client (in a
process of its own, ``django_cache_site.py``: Django's settings are process-wide) and a
Starlette app through httpx. Hits with their ``Age``, HEAD from GET's entry, Vary, what is
never stored, the response's max-age, another instance answered from Redis, and one view
call for a stampede."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from opsmesh_client.cache import AsyncCache, AsyncRedisStore, Namespace
from opsmesh_client.cache.asgi_views import cache_endpoint
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.integration
SITE = Path(__file__).with_name("django_cache_site.py")
PAGES = Namespace("pages", ttl_s=60, lease_s=10)


def test_django_views_through_the_test_client(cache_redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SITE), cache_redis_url, f"views-{uuid.uuid4().hex[:8]}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    first, again = out["first"], out["reordered"]
    assert (first["body"], first["age"]) == ("page 1 en b=2&a=1", None)
    assert (again["body"], again["age"]) == (first["body"], "7")  # seven (fake) seconds on
    assert out["head"] == {"status": 200, "body": "", "age": "7", "length": "17"}
    assert out["french"]["body"] == "page 2 fr a=1&b=2"  # Accept-Language is declared
    assert out["other_instance"] == again  # from Redis, stored by the first instance
    assert out["post"]["body"] == "page 3 en a=1&b=2"
    assert out["page_calls"] == 3
    assert (out["max_age_hit"]["age"], out["max_age_expired"]["age"]) == ("3", None)
    assert out["dark"] == ["theme dark"] * 2
    assert out["light"] == ["theme light"] * 2
    assert out["opted_other_cookie"] == "for sid=3"
    assert out["stampede"] == ["slow"] * 8
    assert out["calls"] == {
        "page": 7,  # three above, two private ones, max-age: stored, then expired
        "cookie": 2,  # Set-Cookie: never stored
        "failing": 2,  # 503
        "themed": 3,  # dark stored; light differs in the response's own Vary: not served
        "personal": 6,  # twice with a cookie, twice authorized, opted in: sid=2 once, sid=3
        "slow": 1,  # eight requests at once, one call
    }


class Site:
    def __init__(self, cache: AsyncCache) -> None:
        self.cache = cache
        self.calls: Counter[str] = Counter()
        self.release = asyncio.Event()
        cached = cache_endpoint(cache, namespace="pages", vary=("accept-language",))
        self.app = Starlette(
            routes=[
                Route("/page", cached(self.page), methods=["GET", "HEAD", "POST"]),
                Route("/private", cached(self.private)),
                Route("/stream", cached(self.stream)),
                Route("/slow", cached(self.slow)),
            ]
        )

    async def page(self, request: Request) -> Response:
        self.calls["page"] += 1
        language = request.headers.get("accept-language", "en")
        return PlainTextResponse(
            f"page {self.calls['page']} {language}", headers={"Cache-Control": "max-age=30"}
        )

    async def private(self, request: Request) -> Response:
        self.calls["private"] += 1
        return PlainTextResponse("mine", headers={"Cache-Control": "private"})

    async def stream(self, request: Request) -> Response:
        self.calls["stream"] += 1
        return StreamingResponse(iter([b"a", b"b"]))

    async def slow(self, request: Request) -> Response:
        self.calls["slow"] += 1
        await self.release.wait()
        return PlainTextResponse("slow")


@pytest.fixture
async def stores(cache_redis_url: str) -> AsyncIterator[tuple[AsyncCache, AsyncCache]]:
    prefix = f"asgi-{uuid.uuid4().hex[:8]}"
    made = [AsyncRedisStore(cache_redis_url) for _ in range(2)]
    caches = [AsyncCache(store, [PAGES], prefix=prefix) for store in made]
    for cache in caches:
        await cache.start()
    try:
        yield caches[0], caches[1]
    finally:
        for cache, store in zip(caches, made, strict=True):
            await cache.aclose()
            await store.aclose()


def client_of(site: Site) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://shop")


async def test_starlette_endpoints_through_httpx(stores: tuple[AsyncCache, AsyncCache]) -> None:
    one, two = Site(stores[0]), Site(stores[1])
    async with client_of(one) as client, client_of(two) as other:
        first = await client.get("/page?b=2&a=1")
        hit = await client.get("/page?a=1&b=2")
        assert first.text == hit.text == "page 1 en"
        assert "age" not in first.headers
        assert hit.headers["age"] == "0"
        assert hit.headers["cache-control"] == "max-age=30"
        head = await client.head("/page?a=1&b=2")
        assert (head.content, head.headers["content-length"]) == (b"", "9")
        assert (await client.get("/page?a=1&b=2", headers={"Accept-Language": "fr"})).text == (
            "page 2 fr"
        )
        assert (await client.post("/page?a=1&b=2")).text == "page 3 en"
        assert (await client.get("/page?a=1&b=2", headers={"Cookie": "sid=1"})).text == (
            "page 4 en"
        )
        # The other instance: served from Redis what the first stored.
        assert (await other.get("/page?b=2&a=1")).text == "page 1 en"
        assert two.calls["page"] == 0
        for _ in "ab":
            assert (await client.get("/private")).text == "mine"
            assert (await client.get("/stream")).text == "ab"
        assert one.calls == {"page": 4, "private": 2, "stream": 2}

        # Eight requests at once over two instances: all miss, then one endpoint call.
        missed = _misses(stores)
        waiting = asyncio.gather(*[c.get("/slow") for c in (client, other) for _ in range(4)])
        await _until(lambda: _misses(stores) == missed + 8)
        one.release.set()
        two.release.set()
        assert [r.text for r in await waiting] == ["slow"] * 8
        assert one.calls["slow"] + two.calls["slow"] == 1


def _misses(caches: tuple[AsyncCache, AsyncCache]) -> int:
    return sum(cache.tiers.counts["pages"].misses for cache in caches)


async def _until(condition: Callable[[], bool]) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, until=bool, what="the requests to miss")
