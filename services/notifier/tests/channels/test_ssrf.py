"""The target policy on every connection of every channel.

Two local servers: an allowed origin on 127.0.0.1 (the only allow-listed address) that
answers as each channel's service would, or redirects when told; and a trap on
127.0.0.2, loopback but not allow-listed, that records every request it gets. Whatever
a receiver's URL or a redirect says, the trap must see nothing."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.channels.base import Channel
from notifier.channels.email import EmailChannel
from notifier.channels.pagerduty import PagerDutyChannel
from notifier.channels.safe_http import safe_session
from notifier.channels.slack import MemoryMessageRefs, SlackChannel
from notifier.channels.webhook import WebhookChannel
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy, TargetRefused
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from opsmesh_dev.infra.process import free_port
from opsmesh_dev.testing.clock import FakeClock

ORIGIN_ONLY = TargetPolicy.from_strings(["127.0.0.1/32"])
TRAP_HOST = "127.0.0.2"


@dataclass
class Server:
    base: str = ""
    port: int = 0
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)  # method, path, body
    redirect: tuple[int, str] | None = None  # (status, Location) for every request


async def _serve(host: str, state: Server) -> web.AppRunner:
    async def any_request(request: web.Request) -> web.Response:
        state.seen.append((request.method, request.path, await request.read()))
        if state.redirect is not None:
            status, location = state.redirect
            return web.Response(status=status, headers={"Location": location})
        if request.path.startswith("/api/"):  # Slack's Web API
            return web.json_response({"ok": True, "channel": "C1", "ts": "1.0"})
        return web.Response(text="ok")  # Slack webhooks, PagerDuty, webhooks

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_request)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    state.port = runner.addresses[0][1]
    state.base = f"http://{host}:{state.port}"
    return runner


@pytest.fixture
async def origin() -> AsyncIterator[Server]:
    state = Server()
    runner = await _serve("127.0.0.1", state)
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def trap() -> AsyncIterator[Server]:
    state = Server()
    runner = await _serve(TRAP_HOST, state)
    try:
        yield state
    finally:
        await runner.cleanup()


class FakeResolver(AbstractResolver):
    """DNS as a test wants it: names onto fixed addresses; anything else (numeric
    forms such as ``0x7f.0.0.2``) as the system resolver reads it."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.system = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.names:
            return await self.system.resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.names[host]
        ]

    async def close(self) -> None:
        await self.system.close()


NAMES = {
    "origin.example": ["127.0.0.1"],
    "trap.example": [TRAP_HOST],
    "rebind.example": ["127.0.0.1", TRAP_HOST],
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with safe_session(ORIGIN_ONLY, timeout_s=5.0, resolver=FakeResolver(NAMES)) as s:
        yield s


Build = Callable[[str, aiohttp.ClientSession], Channel]


def _receiver(kind: str, config: dict[str, Any]) -> Any:
    return parse_receivers({"receivers": [{"name": "ops", f"{kind}_configs": [config]}]})["ops"]


def webhook(base: str, session: aiohttp.ClientSession) -> Channel:
    return WebhookChannel(
        name="webhook-0",
        url=f"{base}/hook?token=hunter2-in-query",
        secrets=[],
        session=session,
        policy=ORIGIN_ONLY,
        clock=FakeClock(1_700_000_000.0),
    )


def slack_webhook(base: str, session: aiohttp.ClientSession) -> Channel:
    config = _receiver("slack", {"api_url": f"{base}/services/T1/B1/SECRETPATH"})
    return SlackChannel(
        name="slack-0",
        receiver="ops",
        config=config.slack_configs[0],
        session=session,
        policy=ORIGIN_ONLY,
        refs=MemoryMessageRefs(),
        timeout_s=5.0,
    )


def slack_api(base: str, session: aiohttp.ClientSession) -> Channel:
    config = _receiver(
        "slack", {"token": "xoxb-secret-token", "channel": "#ops", "api_base_url": f"{base}/api/"}
    )
    return SlackChannel(
        name="slack-0",
        receiver="ops",
        config=config.slack_configs[0],
        session=session,
        policy=ORIGIN_ONLY,
        refs=MemoryMessageRefs(),
        timeout_s=5.0,
    )


def pagerduty(base: str, session: aiohttp.ClientSession) -> Channel:
    config = _receiver(
        "pagerduty",
        {"routing_key": "R0UTINGKEY0123456789abcdef012345", "url": f"{base}/v2/enqueue"},
    )
    return PagerDutyChannel(
        name="pagerduty-0", config=config.pagerduty_configs[0], session=session, policy=ORIGIN_ONLY
    )


CHANNELS: dict[str, Build] = {
    "webhook": webhook,
    "slack-webhook": slack_webhook,
    "slack-api": slack_api,
    "pagerduty": pagerduty,
}
KINDS = list(CHANNELS)


@pytest.mark.parametrize("kind", KINDS)
async def test_the_allowed_origin_is_delivered_to(
    kind: str, origin: Server, session: aiohttp.ClientSession
) -> None:
    result = await CHANNELS[kind](origin.base, session).send(sample_request("ops"))
    assert result.ok, result
    assert len(origin.seen) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_to_a_blocked_target_is_not_followed(
    kind: str, status: int, origin: Server, trap: Server, session: aiohttp.ClientSession
) -> None:
    origin.redirect = (status, f"{trap.base}/latest/meta-data/?secret=1")
    result = await CHANNELS[kind](origin.base, session).send(sample_request("ops"))
    assert result.failure is FailureKind.REDIRECTED
    assert not result.failure.retryable
    assert result.status_code == status
    assert result.error is not None
    assert "redirects are not followed" in result.error
    assert "meta-data" not in result.error
    assert len(origin.seen) == 1
    assert trap.seen == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_to_an_allowed_address_is_not_followed_either(
    kind: str, origin: Server, session: aiohttp.ClientSession
) -> None:
    origin.redirect = (307, f"{origin.base}/elsewhere")
    result = await CHANNELS[kind](origin.base, session).send(sample_request("ops"))
    assert result.failure is FailureKind.REDIRECTED
    assert len(origin.seen) == 1


TRAP_FORMS = [
    TRAP_HOST,
    "2130706434",  # decimal
    "0177.0.0.2",  # octal
    "0x7f.0.0.2",  # hex
    "0x7f000002",
    "127.2",  # inet_aton shorthand
    "[::ffff:127.0.0.2]",  # IPv4-mapped IPv6
    "[::ffff:7f00:2]",
    "trap.example",  # a name resolving to it
    "rebind.example",  # one good and one bad answer
]
OTHER_BLOCKED = [
    "[::1]",
    "0.0.0.0",
    "169.254.169.254",
    "[fd00::1]",
    "[fe80::1]",
    "100.100.100.200",
    "10.1.2.3",
    "192.168.0.1",
    "[64:ff9b::7f00:1]",  # NAT64 of loopback
]


@pytest.mark.parametrize("form", TRAP_FORMS)
@pytest.mark.parametrize("kind", KINDS)
async def test_every_form_of_a_blocked_host_is_refused(
    kind: str, form: str, trap: Server, session: aiohttp.ClientSession
) -> None:
    result = await CHANNELS[kind](f"http://{form}:{trap.port}", session).send(sample_request("ops"))
    assert result.failure is FailureKind.REFUSED_TARGET, result
    assert not result.failure.retryable
    assert result.error is not None
    # Either the policy refused the address, or the client the URL (it will not
    # connect to a non-canonical IPv4 literal such as 2130706434).
    assert "non-public address" in result.error or "canonical" in result.error
    assert trap.seen == []


@pytest.mark.parametrize("host", OTHER_BLOCKED)
@pytest.mark.parametrize("kind", KINDS)
async def test_other_non_public_literals_are_refused(
    kind: str, host: str, session: aiohttp.ClientSession
) -> None:
    result = await CHANNELS[kind](f"http://{host}:9", session).send(sample_request("ops"))
    assert result.failure is FailureKind.REFUSED_TARGET, result


async def test_a_name_is_delivered_to_when_it_resolves_to_an_allowed_address(
    origin: Server, session: aiohttp.ClientSession
) -> None:
    result = await webhook(f"http://origin.example:{origin.port}", session).send(
        sample_request("ops")
    )
    assert result.ok, result
    assert len(origin.seen) == 1


# -- email: the smarthost ------------------------------------------------------------


async def fake_getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
    addresses = NAMES.get(host)
    if addresses is None:  # numeric forms, as the system resolver reads them
        return await _system_getaddrinfo(host, port)
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


async def _system_getaddrinfo(host: str, port: int) -> list[Any]:
    loop = __import__("asyncio").get_running_loop()
    return list(
        await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    )


@pytest.mark.parametrize("form", TRAP_FORMS)
async def test_a_blocked_smarthost_is_refused_before_connecting(form: str) -> None:
    trap_port = free_port()
    listener = socket.socket()
    listener.bind((TRAP_HOST, trap_port))
    listener.listen()
    listener.setblocking(False)
    try:
        config = _receiver(
            "email",
            {
                "to": ["a@example.com"],
                "from": "o@example.com",
                "smarthost": f"{form}:{trap_port}",
                "auth_username": "u",
                "auth_password": "smtp-password-secret",
            },
        )
        channel = EmailChannel(
            name="email-0",
            config=config.email_configs[0],
            policy=ORIGIN_ONLY,
            timeout_s=5.0,
            resolve=fake_getaddrinfo,
        )
        result = await channel.send(sample_request("ops"))
        assert result.failure is FailureKind.REFUSED_TARGET, result
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


# -- property: any blocked address, any textual form ---------------------------------

BLOCKED_V4 = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "192.0.2.0/24",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
BLOCKED_V6 = ["::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "::/128", "2001:db8::/32"]


@st.composite
def blocked_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = ipaddress.ip_network(draw(st.sampled_from(BLOCKED_V4)))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return ipaddress.IPv4Address(int(network.network_address) + offset)


@st.composite
def blocked_v6(draw: st.DrawFn) -> ipaddress.IPv6Address:
    network = ipaddress.ip_network(draw(st.sampled_from(BLOCKED_V6)))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return ipaddress.IPv6Address(int(network.network_address) + offset)


def v4_forms(ip: ipaddress.IPv4Address) -> list[str]:
    a, b, c, d = ip.packed
    n = int(ip)
    return [
        str(ip),
        str(n),  # 2130706433
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",  # octal
        f"0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}",  # hex
        f"0x{n:x}",
        f"{a}.{(b << 16) | (c << 8) | d}",  # a.b24
        f"[::ffff:{ip}]",
        f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
    ]


def v6_forms(ip: ipaddress.IPv6Address) -> list[str]:
    return [f"[{ip.compressed}]", f"[{ip.exploded}]", f"[{ip.exploded.upper()}]"]


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(blocked_v4().map(v4_forms), blocked_v6().map(v6_forms)))
async def test_any_blocked_address_in_any_form_is_refused(forms: list[str]) -> None:
    async with safe_session(TargetPolicy(), timeout_s=5.0) as session:
        for form in forms:
            result = await webhook(f"http://{form}:9", session).send(sample_request("ops"))
            assert result.failure is FailureKind.REFUSED_TARGET, (form, result)


@given(st.one_of(blocked_v4(), blocked_v6()))
def test_the_validator_refuses_every_blocked_address(ip: ipaddress._BaseAddress) -> None:
    policy = TargetPolicy()
    texts = [str(ip)]
    if isinstance(ip, ipaddress.IPv4Address):
        texts.append(f"::ffff:{ip}")
    for text in texts:
        with pytest.raises(TargetRefused):
            policy.check("h", text)
