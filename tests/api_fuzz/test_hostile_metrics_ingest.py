"""metrics-ingest's hostile-input corpus: every endpoint refuses each hostile request with a
4xx and a message (never a 5xx), and a good sample sent afterwards is rolled up."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest

from tests.api_fuzz.conftest import METRICS_TOKEN, FuzzMesh
from tests.api_fuzz.hostile import (
    FAR_FUTURE,
    LONE_SURROGATE_JSON,
    NUL,
    Probe,
    auth_abuse,
    deflate,
    gzip_bomb,
    json_body,
    nested,
    refused,
)
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}", "Content-Type": "application/json"}
MAX_BODY = 8 * 1024 * 1024


def _post(name: str, body: bytes, status: int | None = None, **headers: str) -> Probe:
    return Probe(name, "POST", "/api/v1/metrics", body, {**AUTH, **headers}, status)


def _sample(**fields: object) -> bytes:
    return json_body({"samples": [{"name": "hostile", "value": 1.0, **fields}]})


def _ingest_probes() -> list[Probe]:
    now = time.time()
    return [
        _post("oversized body", b'{"samples": [' + b" " * (MAX_BODY + 1) + b"]}", 413),
        _post("gzip bomb", gzip_bomb(64 * 1024 * 1024), 413, **{"Content-Encoding": "gzip"}),
        _post(
            "deflate bomb",
            deflate(b"[" * (32 * 1024 * 1024)),
            413,
            **{"Content-Encoding": "deflate"},
        ),
        _post("gzip that is not gzip", b'{"samples": []}', 400, **{"Content-Encoding": "gzip"}),
        _post("truncated gzip", gzip_bomb(1024)[:20], 400, **{"Content-Encoding": "gzip"}),
        _post("unknown encoding", b"{}", 415, **{"Content-Encoding": "br"}),
        _post("two encodings", b"{}", 415, **{"Content-Encoding": "gzip, gzip"}),
        _post("wrong content type", _sample(), 415, **{"Content-Type": "text/plain"}),
        _post(
            "form content type",
            b"samples=1",
            415,
            **{"Content-Type": "application/x-www-form-urlencoded"},
        ),
        _post("not JSON", b"\x00\xff\xfe garbage", 400),
        _post("empty body", b"", 400),
        _post("JSON null", b"null", 400),
        _post("deeply nested samples", b'{"samples": ' + nested(200_000) + b"}", 400),
        _post("deeply nested sample", b'{"samples": [' + nested(200_000) + b"]}", 400),
        _post("too many samples", json_body({"samples": [{}] * 10_001}), 413),
        _post("NUL in name", _sample(name=f"a{NUL}b"), 400),
        _post("NUL in label name", _sample(labels={f"a{NUL}": "v"}), 400),
        _post("NUL in label value", _sample(labels={"a": f"v{NUL}"}), 400),
        _post(
            "lone surrogate in name",
            b'{"samples": [{"name": ' + LONE_SURROGATE_JSON.encode() + b', "value": 1}]}',
            400,
        ),
        _post(
            "lone surrogate in label value",
            b'{"samples": [{"name": "a", "value": 1, "labels": {"x": '
            + LONE_SURROGATE_JSON.encode()
            + b"}}]}",
            400,
        ),
        _post("invalid UTF-8", b'{"samples": [{"name": "\xff\xfe", "value": 1}]}', 400),
        _post("huge number", b'{"samples": [{"name": "a", "value": 1e400}]}', 400),
        _post("NaN", b'{"samples": [{"name": "a", "value": NaN}]}', 400),
        _post("Infinity", b'{"samples": [{"name": "a", "value": Infinity}]}', 400),
        _post("huge integer", b'{"samples": [{"name": "a", "value": ' + b"9" * 5000 + b"}]}", 400),
        _post("far-future sampled_at", _sample(sampled_at=253402387140.0), 400),
        _post("far-future timestamp string", _sample(sampled_at=FAR_FUTURE), 400),
        _post("negative sampled_at", _sample(sampled_at=-1.0), 400),
        _post("ancient sampled_at", _sample(sampled_at=now - 400 * 86400), 400),
        _post(
            "huge bucket count", _sample(kind="histogram", buckets=[{"le": 1, "count": 1e400}]), 400
        ),
        _post("65 labels", _sample(labels={f"l{i}": "v" for i in range(65)}), 400),
        _post("10 KB label value", _sample(labels={"a": "v" * 10_000}), 400),
        _post("unknown field", _sample(extra="x"), 400),
        _post("wrong kind", _sample(kind="summary"), 400),
        *auth_abuse("POST", "/api/v1/metrics", _sample(), 401),
        Probe("no token", "POST", "/api/v1/metrics", _sample(), {}, 401),
    ]


def _series_probes() -> list[Probe]:
    def get(name: str, query: str, status: int = 400) -> Probe:
        return Probe(name, "GET", f"/api/v1/series?{query}", status=status)

    return [
        get("no name", "start=0"),
        get("NUL in name", "name=a%00b"),
        get("lone surrogate in name", "name=%ED%A0%80"),
        get("invalid UTF-8 in name", "name=%FF%FE"),
        get("bad percent-encoding", "name=%ZZ"),
        get("path traversal in name", "name=..%2F..%2Fetc%2Fpasswd"),
        get("NaN start", "name=a&start=nan"),
        get("infinite end", "name=a&end=inf"),
        get("huge start", "name=a&start=1e400"),
        get("far-future end", "name=a&start=0&end=1e20"),
        get("far-future RFC 3339", f"name=a&end={FAR_FUTURE}"),
        get("negative start", "name=a&start=-5"),
        get("step zero", "name=a&step=0"),
        get("negative step", "name=a&step=-10"),
        get("absurd step", "name=a&step=99999999999999999999d"),
        get("21 matchers", "name=a&" + "&".join(f"match=l{i}%3D%22v%22" for i in range(21))),
        get("malformed matcher", "name=a&match=%7B%7D%7B"),
        get("NUL in matcher", "name=a&match=l%3D%22%00%22"),
        get("9 KB query", "name=a&match=" + "a" * 9000),
        # Whitespace runs the old matcher pattern took cubic time over (~20 s each, with
        # the event loop held): refused at once, never an answer that takes minutes.
        get("backtracking matchers", "name=a" + ("&match=a%3D" + "+" * 2000 + "x%0Ax") * 3),
        get("matcher over 2048 characters", "name=a&match=a%3D" + "v" * 2100),
    ]


def _path_probes() -> list[Probe]:
    return [
        Probe("traversal", "GET", "/api/v1/../../etc/passwd", status=404),
        Probe("encoded traversal", "GET", "/metrics/apps/..%2F..%2Fetc%2Fpasswd", status=404),
        Probe("NUL in path", "GET", "/api/v1/series%00", status=404),
        Probe("wrong method", "DELETE", "/api/v1/metrics", status=405),
        Probe("PUT to ingest", "PUT", "/api/v1/metrics", _sample(), AUTH, 405),
    ]


async def test_hostile_requests_get_a_4xx_and_good_data_still_flows(fuzz_mesh: FuzzMesh) -> None:
    base = fuzz_mesh.url("metrics-ingest")
    problems = await refused(base, [*_ingest_probes(), *_series_probes(), *_path_probes()])
    assert problems == [], "\n".join(problems)

    name = f"after_hostile_{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/api/v1/metrics",
            json={"samples": [{"name": name, "value": 42.0, "labels": {"run": "ok"}}]},
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        ) as response:
            assert response.status == 200, await response.text()

        async def exposed() -> str:
            async with session.get(f"{base}/metrics/apps") as apps:
                return await apps.text()

        text = await eventually(
            exposed, until=lambda t: name in t, timeout_s=30, what="the good sample"
        )
    assert f'{name}{{run="ok"}} 42' in text
