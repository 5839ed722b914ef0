"""The Fastly adapter against a local server speaking Fastly's purge API."""

from __future__ import annotations

import pytest
from aiohttp import web

from opsmesh_client.cdn import ImageTransform, PurgeError, PurgeRequest, PurgeScope
from opsmesh_client.cdn.config import provider_from_config

from .cdn_fakes import FakeServer, serve

SERVICE = "SU1Z0isxPaozGVKXdv0eY"
KEY = "fastly-key-never-logged"


def _authorized(request: web.Request) -> web.Response | None:
    if request.headers.get("Fastly-Key") != KEY:
        return web.json_response({"msg": "Provided credentials are missing or invalid"}, status=401)
    return None


async def _purge_url(request: web.Request, _: FakeServer) -> web.Response:
    return _authorized(request) or web.json_response({"status": "ok", "id": "108-1391560174"})


async def _purge_key(request: web.Request, _: FakeServer) -> web.Response:
    return _authorized(request) or web.json_response({"status": "ok", "id": "108-1391560175"})


async def _purge_keys(request: web.Request, _: FakeServer) -> web.Response:
    denied = _authorized(request)
    if denied:
        return denied
    keys = request.headers.get("Surrogate-Key", "").split()
    if not keys or len(keys) > 256:
        return web.json_response({"msg": "bad surrogate keys"}, status=400)
    return web.json_response({k: f"id-{k}" for k in keys})


async def _purge_all(request: web.Request, _: FakeServer) -> web.Response:
    return _authorized(request) or web.json_response({"status": "ok"})


def _routes() -> list[tuple[str, str, object]]:
    return [
        ("POST", "/purge/{target:.+}", _purge_url),
        ("POST", f"/service/{SERVICE}/purge/{{key}}", _purge_key),
        ("POST", f"/service/{SERVICE}/purge", _purge_keys),
        ("POST", f"/service/{SERVICE}/purge_all", _purge_all),
    ]


def _provider(fake: FakeServer, key: str = KEY, **extra: object):
    config = {
        "type": "fastly",
        "base_url": "https://assets.example.com",
        "service_id": SERVICE,
        "api_key_env": "FASTLY_KEY",
        "api_base_url": fake.url,
        **extra,
    }
    return provider_from_config("fastly", config, env={"FASTLY_KEY": key})


async def test_urls_keys_in_batches_of_256_and_purge_all():
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        provider = _provider(fake)
        await provider.purge(
            PurgeRequest(PurgeScope.URL, ("img/logo.png", "https://other.example.com/a?b=1"))
        )
        keys = tuple(f"k{n}" for n in range(300))
        await provider.purge(PurgeRequest(PurgeScope.TAG, keys))
        await provider.purge(PurgeRequest(PurgeScope.TAG, ("product-7",)))
        await provider.purge(PurgeRequest(PurgeScope.ALL))

    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/purge/assets.example.com/img/logo.png"),
        ("POST", "/purge/other.example.com/a?b=1"),
        ("POST", f"/service/{SERVICE}/purge"),
        ("POST", f"/service/{SERVICE}/purge"),
        ("POST", f"/service/{SERVICE}/purge/product-7"),
        ("POST", f"/service/{SERVICE}/purge_all"),
    ]
    batch_sizes = [len(r.headers["Surrogate-Key"].split()) for r in fake.requests[2:4]]
    assert batch_sizes == [256, 44]
    assert all("Fastly-Soft-Purge" not in r.headers for r in fake.requests)


async def test_soft_purge_marks_stale_except_purge_all():
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        provider = _provider(fake, soft_purge=True)
        await provider.purge(PurgeRequest(PurgeScope.TAG, ("a", "b")))
        await provider.purge(PurgeRequest(PurgeScope.ALL))
    assert [r.headers.get("Fastly-Soft-Purge") for r in fake.requests] == ["1", None]


async def test_prefix_and_bad_keys_are_refused_before_any_call():
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        provider = _provider(fake)
        with pytest.raises(PurgeError, match="purge by prefix is not supported") as prefix:
            await provider.purge(PurgeRequest(PurgeScope.PREFIX, ("img/",)))
        with pytest.raises(PurgeError, match="not printable ASCII") as spaced:
            await provider.purge(PurgeRequest(PurgeScope.TAG, ("two words",)))
    assert not prefix.value.transient
    assert not spaced.value.transient
    assert fake.requests == []


@pytest.mark.parametrize(("status", "transient"), [(401, False), (429, True), (503, True)])
async def test_failures_are_classed(status, transient):
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        fake.fail_next = [status]
        with pytest.raises(PurgeError) as caught:
            await _provider(fake).purge(PurgeRequest(PurgeScope.ALL))
    assert caught.value.transient is transient


async def test_a_wrong_key_is_deterministic_and_never_in_the_error():
    async with serve(_routes()) as fake:  # type: ignore[arg-type]
        with pytest.raises(PurgeError) as caught:
            await _provider(fake, key="wrong-key").purge(PurgeRequest(PurgeScope.ALL))
    assert not caught.value.transient
    assert "401" in caught.value.reason
    assert "wrong-key" not in str(caught.value)


def test_asset_urls_use_image_optimizer_parameters():
    provider = provider_from_config(
        "fastly",
        {
            "type": "fastly",
            "base_url": "https://assets.example.com/",
            "service_id": SERVICE,
            "api_key_env": "FASTLY_KEY",
        },
        env={"FASTLY_KEY": KEY},
    )
    url = provider.asset_url(
        "img/logo.png",
        transform=ImageTransform(width=200, quality=80, format="jpeg", fit="contain"),
    )
    assert (
        url == "https://assets.example.com/img/logo.png?width=200&quality=80&format=jpg&fit=bounds"
    )
