"""The Cloudflare adapter through the official SDK against a local server speaking
Cloudflare's v4 purge endpoint (``POST /zones/{zone_id}/purge_cache``, v4 envelope)."""

from __future__ import annotations

import pytest
from aiohttp import web

from opsmesh_client.cdn import ImageTransform, PurgeError, PurgeRequest, PurgeScope
from opsmesh_client.cdn.config import provider_from_config

from .cdn_fakes import FakeServer, serve

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-token-never-logged"
_ONE_OF = ("files", "prefixes", "tags", "hosts", "purge_everything")


def _envelope(success: bool, result: object, errors: list[dict[str, object]]) -> dict[str, object]:
    return {"success": success, "errors": errors, "messages": [], "result": result}


async def _purge_cache(request: web.Request, _: FakeServer) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.json_response(
            _envelope(False, None, [{"code": 10000, "message": "Authentication error"}]),
            status=403,
        )
    body = await request.json()
    fields = [k for k in _ONE_OF if k in body]
    values = body.get(fields[0]) if len(fields) == 1 else None
    too_many = isinstance(values, list) and len(values) > 100
    if len(fields) != 1 or too_many or values in ([], False):
        return web.json_response(
            _envelope(False, None, [{"code": 1015, "message": "invalid purge request"}]),
            status=400,
        )
    return web.json_response(_envelope(True, {"id": "9a7806061c88ada191ed06f989cc3dac"}, []))


def _routes() -> list[tuple[str, str, object]]:
    return [("POST", "/client/v4/zones/{zone}/purge_cache", _purge_cache)]


def _provider(fake: FakeServer, token: str = TOKEN, **extra: object):
    config = {
        "type": "cloudflare",
        "base_url": "https://www.example.com/static",
        "zone_id": ZONE,
        "api_token_env": "CF_TOKEN",
        "api_base_url": f"{fake.url}/client/v4",
        **extra,
    }
    return provider_from_config("cloudflare", config, env={"CF_TOKEN": token})


async def test_each_scope_in_cloudflares_fields_batched_within_the_limit():
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        provider = _provider(fake, max_per_call=30)
        urls = tuple(f"img/{n}.png" for n in range(65))
        await provider.purge(PurgeRequest(PurgeScope.URL, urls))
        await provider.purge(PurgeRequest(PurgeScope.PREFIX, ("css/", "https://x.example.com/js")))
        await provider.purge(PurgeRequest(PurgeScope.TAG, ("product-1", "home")))
        await provider.purge(PurgeRequest(PurgeScope.ALL))

    assert {r.path for r in fake.requests} == {f"/client/v4/zones/{ZONE}/purge_cache"}
    bodies = [r.body for r in fake.requests]
    assert [len(b["files"]) for b in bodies[:3]] == [30, 30, 5]
    assert bodies[0]["files"][0] == "https://www.example.com/static/img/0.png"
    assert bodies[3:] == [
        {"prefixes": ["www.example.com/static/css/", "x.example.com/js"]},
        {"tags": ["product-1", "home"]},
        {"purge_everything": True},
    ]


async def test_a_bad_token_is_deterministic_and_names_cloudflares_error():
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        with pytest.raises(PurgeError) as caught:
            await _provider(fake, token="wrong").purge(PurgeRequest(PurgeScope.ALL))
    assert not caught.value.transient
    assert "10000 Authentication error" in caught.value.reason
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 502])
async def test_rate_limits_and_server_errors_are_transient_and_not_retried_by_the_sdk(status):
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        fake.fail_next = [status]
        with pytest.raises(PurgeError) as caught:
            await _provider(fake).purge(PurgeRequest(PurgeScope.TAG, ("t",)))
    assert caught.value.transient
    assert len(fake.requests) == 1, "the caller owns retries"


async def test_an_unreachable_api_is_transient():
    async with serve([]) as fake:
        pass
    with pytest.raises(PurgeError) as caught:
        await _provider(fake).purge(PurgeRequest(PurgeScope.ALL))
    assert caught.value.transient


def test_asset_urls_use_cdn_cgi_image_with_the_zones_path():
    provider = provider_from_config(
        "cf",
        {
            "type": "cloudflare",
            "base_url": "https://www.example.com/static/",
            "zone_id": ZONE,
            "api_token_env": "CF_TOKEN",
        },
        env={"CF_TOKEN": TOKEN},
    )
    assert provider.asset_url("img/logo.png") == "https://www.example.com/static/img/logo.png"
    transformed = provider.asset_url(
        "img/logo.png", transform=ImageTransform(width=200, quality=80, format="webp", fit="cover")
    )
    assert transformed == (
        "https://www.example.com/cdn-cgi/image/width=200,quality=80,format=webp,fit=cover"
        "/static/img/logo.png"
    )


async def test_an_envelope_without_success_is_not_a_purge():
    async def refuses(_: web.Request, __: FakeServer) -> web.Response:
        errors = [{"code": 1134, "message": "purge not allowed on this zone"}]
        return web.json_response(_envelope(False, None, errors))  # HTTP 200 all the same

    async def garbled(_: web.Request, __: FakeServer) -> web.Response:
        return web.Response(text="<html>bad gateway</html>", content_type="text/html")

    async with serve([("POST", "/client/v4/zones/{zone}/purge_cache", refuses)]) as fake:
        with pytest.raises(PurgeError, match="1134 purge not allowed") as refused:
            await _provider(fake).purge(PurgeRequest(PurgeScope.ALL))
    assert not refused.value.transient
    async with serve([("POST", "/client/v4/zones/{zone}/purge_cache", garbled)]) as fake:
        with pytest.raises(PurgeError, match="not the v4 envelope") as broken:
            await _provider(fake).purge(PurgeRequest(PurgeScope.TAG, ("t",)))
    assert broken.value.transient
