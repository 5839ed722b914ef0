"""The generic provider against a local purge endpoint, and building providers from
configuration (validation, secrets from the environment only)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from aiohttp import web

from opsmesh_client.cdn import ImageTransform, PurgeError, PurgeRequest, PurgeScope
from opsmesh_client.cdn.config import CdnConfigError, provider_from_config, providers_from_file

from .cdn_fakes import FakeServer, serve

TOKEN = "s3cr3t-generic-token"


async def _ok(_: web.Request, __: FakeServer) -> web.Response:
    return web.json_response({"ok": True})


def generic(fake_url: str, **extra: object) -> dict[str, object]:
    return {
        "type": "generic",
        "base_url": "https://static.example.com/assets/",
        "purge_url": f"{fake_url}/purge",
        "token_env": "GENERIC_TOKEN",
        **extra,
    }


async def test_purges_are_batched_within_the_limit_and_authenticated():
    async with serve([("POST", "/purge", _ok)]) as fake:
        provider = provider_from_config(
            "edge", generic(fake.url, max_per_call=2), env={"GENERIC_TOKEN": TOKEN}
        )
        urls = tuple(f"https://static.example.com/a/{n}.css" for n in range(5))
        await provider.purge(PurgeRequest(PurgeScope.URL, urls))
        await provider.purge(PurgeRequest(PurgeScope.ALL))

    bodies = [r.body for r in fake.requests]
    assert bodies == [
        {"scope": "url", "values": list(urls[0:2])},
        {"scope": "url", "values": list(urls[2:4])},
        {"scope": "url", "values": list(urls[4:5])},
        {"scope": "all", "values": []},
    ]
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert provider.limits.max_values_per_call == 2
    assert TOKEN not in repr(provider)


async def test_the_method_is_configurable_for_varnish_style_endpoints():
    async with serve([("PURGE", "/purge", _ok)]) as fake:
        provider = provider_from_config(
            "varnish", generic(fake.url, purge_method="purge"), env={"GENERIC_TOKEN": TOKEN}
        )
        await provider.purge(PurgeRequest(PurgeScope.TAG, ("product-1",)))
    assert [(r.method, r.body) for r in fake.requests] == [
        ("PURGE", {"scope": "tag", "values": ["product-1"]})
    ]


@pytest.mark.parametrize(
    ("status", "transient"), [(500, True), (503, True), (429, True), (401, False), (400, False)]
)
async def test_failures_are_classed(status, transient):
    async with serve([("POST", "/purge", _ok)]) as fake:
        fake.fail_next = [status]
        provider = provider_from_config("edge", generic(fake.url), env={"GENERIC_TOKEN": TOKEN})
        with pytest.raises(PurgeError) as caught:
            await provider.purge(PurgeRequest(PurgeScope.PREFIX, ("/img/",)))
    assert caught.value.transient is transient
    assert str(status) in caught.value.reason
    assert caught.value.provider == "edge"


async def test_no_answer_is_transient():
    async with serve([]) as fake:
        dead = fake.url  # the port is closed once the server stops
    provider = provider_from_config("edge", generic(dead), env={"GENERIC_TOKEN": TOKEN})
    with pytest.raises(PurgeError) as caught:
        await provider.purge(PurgeRequest(PurgeScope.ALL))
    assert caught.value.transient


async def test_a_scope_left_out_of_the_configuration_is_refused_deterministically():
    provider = provider_from_config(
        "edge",
        generic("http://127.0.0.1:9", scopes=["url"]),
        env={"GENERIC_TOKEN": TOKEN},
    )
    with pytest.raises(PurgeError) as caught:
        await provider.purge(PurgeRequest(PurgeScope.TAG, ("t",)))
    assert not caught.value.transient
    assert "tag" in caught.value.reason


def test_asset_urls_carry_the_transform_under_the_configured_names():
    provider = provider_from_config(
        "edge",
        generic("http://127.0.0.1:9", image_params={"width": "w", "format": "fm"}),
        env={"GENERIC_TOKEN": TOKEN},
    )
    assert provider.asset_url("/img/logo.png") == "https://static.example.com/assets/img/logo.png"
    url = provider.asset_url(
        "img/a b.png", transform=ImageTransform(width=200, quality=80, format="webp")
    )
    assert url == "https://static.example.com/assets/img/a%20b.png?w=200&fm=webp"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "akamai"}, "type: expected one of"),
        ({"base_url": 5}, "base_url: expected a string"),
        ({"base_url": "static.example.com"}, "http:// or https://"),
        ({"max_per_call": 0}, "max_per_call: must be between"),
        ({"max_per_call": True}, "max_per_call: expected an integer"),
        ({"scopes": ["url", "everything"]}, "scopes: expected a list of"),
        ({"token": TOKEN}, "credentials never go in the configuration"),
        ({"token_env": "UNSET_VARIABLE"}, "UNSET_VARIABLE is not set"),
        ({"purge_urll": "x"}, "purge_urll: unknown key"),
    ],
)
def test_configuration_errors_name_the_provider_and_key(change, message):
    config = {**generic("http://127.0.0.1:9"), **change}
    with pytest.raises(CdnConfigError, match=message) as caught:
        provider_from_config("edge", config, env={"GENERIC_TOKEN": TOKEN})
    assert "'edge'" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_providers_from_yaml_and_json_files(tmp_path):
    yaml_file = tmp_path / "cdn.yaml"
    yaml_file.write_text(
        "providers:\n"
        "  a:\n    type: generic\n    base_url: https://a.example\n"
        "    purge_url: https://a.example/purge\n"
        "  b:\n    type: generic\n    base_url: https://b.example\n"
        "    purge_url: https://b.example/purge\n"
    )
    assert [p.name for p in providers_from_file(yaml_file, env={})] == ["a", "b"]

    json_file = tmp_path / "cdn.json"
    entry = {"type": "generic", "base_url": "https://c.example", "purge_url": "https://c.example/p"}
    json_file.write_text(json.dumps([{"name": "c", **entry}, {"name": "d", **entry}]))
    assert [p.name for p in providers_from_file(json_file, env={})] == ["c", "d"]

    json_file.write_text(json.dumps([{"name": "c", **entry}, {"name": "c", **entry}]))
    with pytest.raises(CdnConfigError, match="unique: c"):
        providers_from_file(json_file, env={})


def test_importing_the_package_and_building_providers_loads_no_client_library():
    code = (
        "import sys\n"
        "from opsmesh_client.cdn import provider_from_config, cdn_url\n"
        "p = provider_from_config('f', {'type': 'fastly', 'base_url': 'https://a.example',"
        " 'service_id': 's', 'api_key_env': 'K'}, env={'K': 'k'})\n"
        "p.asset_url('x.png')\n"
        "print(sorted(m for m in ('httpx', 'cloudflare', 'boto3', 'yaml', 'jinja2', 'django')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


async def test_a_timeout_is_transient():
    release = asyncio.Event()

    async def stalls(_: web.Request, __: FakeServer) -> web.Response:
        await release.wait()  # answers only after the client has given up
        return web.json_response({"ok": True})

    async with serve([("POST", "/purge", stalls)]) as fake:
        provider = provider_from_config(
            "edge", generic(fake.url, timeout_s=0.2), env={"GENERIC_TOKEN": TOKEN}
        )
        try:
            with pytest.raises(PurgeError) as caught:
                await provider.purge(PurgeRequest(PurgeScope.ALL))
        finally:
            release.set()
    assert caught.value.transient
    assert "Timeout" in caught.value.reason
