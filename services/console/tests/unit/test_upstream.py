"""The console's HTTP client to the other services, against a local HTTP server that
answers as told: which token goes with a call, and how failures are classed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from console.upstream import Upstream, UpstreamError
from opsmesh_dev.infra.process import free_port


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=403, text="the token lacks the 'write' scope")

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=503, text="restoring state")

    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_post("/refuse", refuse)
    app.router.add_get("/broken", broken)
    async with TestServer(app) as running:
        yield running


async def test_a_read_sends_the_read_token_and_a_write_the_sessions(server: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        plain = Upstream("svc", str(server.make_url("/")), http)
        assert await plain.get_json("/echo") == {"authorization": None}
        reader = Upstream("svc", str(server.make_url("/")), http, read_token="r" * 20)
        assert await reader.get_json("/echo") == {"authorization": f"Bearer {'r' * 20}"}
        answer = await reader.request("GET", "/echo", token="w" * 20)
        assert b"w" * 20 in answer


async def test_failures_are_classed_and_keep_the_services_reason(server: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        svc = Upstream("svc", str(server.make_url("/")), http)
        with pytest.raises(UpstreamError) as refused:
            await svc.request("POST", "/refuse")
        assert (refused.value.status, refused.value.transient) == (403, False)
        assert "lacks the 'write' scope" in str(refused.value)
        with pytest.raises(UpstreamError) as broken:
            await svc.get_json("/broken")
        assert broken.value.transient
        gone = Upstream("gone", f"http://127.0.0.1:{free_port()}", http)
        with pytest.raises(UpstreamError) as unreachable:
            await gone.get_json("/")
        assert (unreachable.value.status, unreachable.value.transient) == (None, True)
        assert str(unreachable.value).startswith("gone: unreachable")
