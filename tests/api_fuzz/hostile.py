"""Hand-made hostile HTTP requests, sent as raw as aiohttp's client allows.

Each ``Probe`` names one bad input; ``refused`` sends them all and returns, for each one
not answered with a 4xx and a message, what it got instead, so one assertion shows every
probe that failed.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

NUL = "\u0000"
LONE_SURROGATE_JSON = '"\\ud800"'  # a JSON escape for a lone surrogate (not valid UTF-8)
FAR_FUTURE = "9999-12-31T23:59:59-23:59"  # year 10000 in UTC


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    method: str
    path: str  # already percent-encoded as it goes on the wire
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None  # the exact 4xx expected, when one is


def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzip-compressed (about 1000:1)."""
    return gzip.compress(b"\0" * size, compresslevel=9)


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def json_body(value: object) -> bytes:
    return json.dumps(value).encode()


async def refused(base_url: str, probes: Iterable[Probe]) -> list[str]:
    """Send each probe; describe those not answered with a 4xx and a message."""
    problems: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        for probe in probes:
            url = URL(base_url + probe.path, encoded=True)
            try:
                async with session.request(
                    probe.method,
                    url,
                    # A stream, as aiohttp asks for bodies of megabytes.
                    data=io.BytesIO(probe.body) if probe.body is not None else None,
                    headers=probe.headers,
                    skip_auto_headers=("Content-Type",),
                ) as response:
                    status, text = response.status, await response.text(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problems.append(f"{probe.name}: no answer ({type(exc).__name__}: {exc})")
                continue
            if probe.status is not None and status != probe.status:
                problems.append(f"{probe.name}: {status}, expected {probe.status}: {text[:200]}")
            elif not 400 <= status < 500:
                problems.append(f"{probe.name}: {status}, expected a 4xx: {text[:200]}")
            elif not text.strip():
                problems.append(f"{probe.name}: {status} without a message")
    return problems


def auth_abuse(method: str, path: str, body: bytes | None, expected: int) -> Sequence[Probe]:
    """Authorization headers that must never be taken for a token."""
    headers = {"Content-Type": "application/json"}
    cases = {
        "no scheme": "s3cret",
        "empty bearer": "Bearer ",
        "bearer only": "Bearer",
        "basic": "Basic Zm9vOmJhcg==",
        "two tokens": "Bearer a, Bearer b",
        "non-ascii token": "Bearer tökén",
        "4 KB token": "Bearer " + "A" * 4096,
    }
    out = [
        Probe(f"auth: {name}", method, path, body, {**headers, "Authorization": value}, expected)
        for name, value in cases.items()
    ]
    # Past aiohttp's header limit: refused by its parser before any handler.
    out.append(
        Probe(
            "auth: 16 KB header",
            method,
            path,
            body,
            {**headers, "Authorization": "Bearer " + "A" * 16384},
        )
    )
    return out
