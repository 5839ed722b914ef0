"""alert-engine under hostile input (issue 10 items 1-4): every case to every endpoint,
without a token, with a read token and with a write token, is answered with a 4xx and a
message (never a 5xx); the secrets stay masked; a regex that is exponential for a
backtracking engine is answered; records on the engine's topics that could never be
stored are dead-lettered; and afterwards a good alert is still accepted, persisted and
notified, so nothing stalled.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
from yarl import URL

from opsmesh.events import AlertsRouted, RoutedAlert, SignalKind, SignalObserved, SignalSource
from opsmesh.kafka import EventProducer
from opsmesh.topics import ALERT_GROUPS, DLQ, SIGNALS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, READ_TOKEN, Sink
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.e2e

NOW = "2030-01-01T00:00:00Z"
LATER = "2030-01-01T01:00:00Z"
TOKENS = {"none": None, "read": READ_TOKEN, "write": API_TOKEN}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # percent-encoded already, sent as it is
    body: bytes | None = None
    content_type: str = "application/json"
    status: int | None = None  # the exact answer with a write token, when it matters


def _alerts(*alerts: object) -> bytes:
    return json.dumps(alerts).encode()


def _alert(**fields: object) -> dict[str, object]:
    return {"labels": {"alertname": "Hostile", "service": "corpus"}, **fields}


def _silence(**fields: object) -> bytes:
    body: dict[str, object] = {
        "matchers": [{"name": "service", "value": "corpus", "isRegex": False, "isEqual": True}],
        "startsAt": NOW,
        "endsAt": LATER,
        "createdBy": "corpus",
        "comment": "hostile",
    }
    body.update(fields)
    return json.dumps(body).encode()


def _q(text: str) -> str:
    return quote(text, safe="")


def _rules(group: str, labels: str) -> bytes:
    return (
        f"groups:\n  - name: {group}\n    rules:\n      - alert: A\n        signal: s\n"
        f'        op: ">"\n        threshold: 1\n        labels: {labels}\n'
    ).encode()


ALERT_BODIES = {
    "nul in a label value": _alerts(_alert(labels={"alertname": "A", "team": "db\x00"})),
    "nul in a label name": _alerts(_alert(labels={"alertname": "A", "te\x00am": "db"})),
    "nul in an annotation": _alerts(_alert(annotations={"summary": "\x00"})),
    "nul in an annotation name": _alerts(_alert(annotations={"\x00": "x"})),
    "nul in generatorURL": _alerts(_alert(generatorURL="http://prom/\x00")),
    "surrogate in a label value": rb'[{"labels": {"alertname": "A", "team": "\ud800"}}]',
    "low surrogate in a label name": rb'[{"labels": {"alertname": "A", "\udc00": "x"}}]',
    "surrogate in an annotation": rb'[{"labels": {"a": "b"}, "annotations": {"s": "x\ud83d"}}]',
    "surrogate in generatorURL": rb'[{"labels": {"a": "b"}, "generatorURL": "\udfff"}]',
    "65 labels": _alerts(_alert(labels={f"l{i}": "x" for i in range(65)})),
    "a 1025-character value": _alerts(_alert(labels={"alertname": "A", "v": "x" * 1025})),
    "a 101-character name": _alerts(_alert(labels={"alertname": "A", "n" * 101: "x"})),
    "an invalid label name": _alerts(_alert(labels={"alertname": "A", "bad-name": "x"})),
    "an empty label value": _alerts(_alert(labels={"alertname": "A", "empty": ""})),
    "no labels": _alerts({"labels": {}}),
    "year 10000 in UTC": _alerts(_alert(endsAt="9999-12-31T23:59:59-23:59")),
    "a year 10000 literal": _alerts(_alert(endsAt="10000-01-01T00:00:00Z")),
    "before 1970": _alerts(_alert(startsAt="1969-12-31T23:59:59Z")),
    "year 1 with an offset": _alerts(_alert(startsAt="0002-01-01T00:00:00+23:59")),
    "not a time": _alerts(_alert(startsAt="yesterday")),
    "a number for a time": _alerts(_alert(endsAt=1e308)),
    "ends before it starts": _alerts(_alert(startsAt=LATER, endsAt=NOW)),
    "deeply nested JSON": b"[" * 100_000 + b"]" * 100_000,
    "nested in a label": b'[{"labels": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}]",
    "truncated JSON": b'[{"labels": {"a": "b"',
    "not JSON": b"\xff\xfe\x00garbage",
    "an object, not a list": b'{"labels": {"a": "b"}}',
    "empty body": b"",
    "a huge number": b'[{"labels": {"a": "b"}, "startsAt": 1' + b"0" * 5000 + b"}]",
}

SILENCE_BODIES = {
    "nul in createdBy": _silence(createdBy="me\x00"),
    "nul in comment": _silence(comment="a\x00b"),
    "nul in a matcher name": _silence(
        matchers=[{"name": "a\x00", "value": "x", "isRegex": False, "isEqual": True}]
    ),
    "nul in a matcher value": _silence(
        matchers=[{"name": "a", "value": "x\x00", "isRegex": False, "isEqual": True}]
    ),
    "surrogate in comment": _silence(comment="PLACEHOLDER").replace(b"PLACEHOLDER", rb"\ud800"),
    "year 10000 in UTC": _silence(endsAt="9999-12-31T23:59:59-23:59"),
    "before 1970": _silence(startsAt="1960-01-01T00:00:00Z"),
    "a backreference": _silence(
        matchers=[{"name": "a", "value": "(x)\\1", "isRegex": True, "isEqual": True}]
    ),
    "a lookahead": _silence(
        matchers=[{"name": "a", "value": "(?=x)x", "isRegex": True, "isEqual": True}]
    ),
    "an unbalanced regex": _silence(
        matchers=[{"name": "a", "value": "(", "isRegex": True, "isEqual": True}]
    ),
    "a 4097-character regex": _silence(
        matchers=[{"name": "a", "value": "a" * 4097, "isRegex": True, "isEqual": True}]
    ),
    "a regex too large to compile": _silence(
        matchers=[{"name": "a", "value": "\\pL{1000}" * 8, "isRegex": True, "isEqual": True}]
    ),
    "no matchers": _silence(matchers=[]),
    "65 matchers": _silence(
        matchers=[{"name": f"l{i}", "value": "x", "isRegex": False} for i in range(65)]
    ),
    "matches everything": _silence(
        matchers=[{"name": "a", "value": ".*", "isRegex": True, "isEqual": True}]
    ),
    "an unknown id": _silence(id="no-such-silence"),
    "nul in the id": _silence(id="x\x00"),
    "not JSON": b"{nope",
}

FILTERS = {
    "nul": 'a="x\x00"',
    "backreference": 'a=~"(x)\\\\1"',
    "lookbehind": 'a=~"(?<=x)y"',
    "unbalanced braces": '{a="x"',
    "unterminated quote": 'a="x',
    "no operator": "a",
    "bad name": '1a="x"',
    "too large": 'a=~"' + "\\\\pL{1000}" * 8 + '"',
}

RULE_BODIES = {
    "nul escape": _rules("hostile", '{team: "db\\0"}'),
    "surrogate escape": _rules("hostile", '{team: "\\ud800"}'),
    "nul in a JSON body": json.dumps(
        {"groups": [{"name": "g\x00", "rules": [{"alert": "A", "signal": "s"}]}]}
    ).encode(),
    "an alias bomb": b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ngroups: []\n",
    "invalid UTF-8": b"groups:\n  - name: \xff\xfe\n",
    "a raw NUL": b"groups: [\x00]\n",
    "an invalid label name": _rules("hostile", "{bad-name: x}"),
    "an empty group name": _rules('""', "{}"),
    "not a rule file": b"[1, 2, 3]",
}


def cases() -> list[Case]:
    out: list[Case] = []
    for name, body in ALERT_BODIES.items():
        out.append(Case(f"alert: {name}", "POST", "/api/v2/alerts", body))
    out.append(Case("alerts: 10 MB", "POST", "/api/v2/alerts", b" " * (10 << 20), status=413))
    many = _alerts(*(_alert() for _ in range(10_001)))
    out.append(Case("alerts: 10001 in one post", "POST", "/api/v2/alerts", many, status=413))
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        out.append(Case(f"alerts as {kind}", "POST", "/api/v2/alerts", b"a=b&c", kind))
    for path in ("/api/v2/silences", "/api/v1/silences"):
        for name, body in SILENCE_BODIES.items():
            status = 404 if name == "an unknown id" else None
            out.append(Case(f"silence {path}: {name}", "POST", path, body, status=status))
        out.append(Case(f"silence {path}: 10 MB", "POST", path, b"{" * (10 << 20), status=413))
    for path in ("/api/v2/alerts", "/api/v2/alerts/groups", "/api/v2/silences"):
        for name, text in FILTERS.items():
            out.append(Case(f"filter {path}: {name}", "GET", f"{path}?filter={_q(text)}"))
        out.append(Case(f"65 filters {path}", "GET", path + "?" + "&".join(["filter=a%3Db"] * 65)))
        out.append(Case(f"active=maybe {path}", "GET", f"{path}?active=maybe"))
    for path in ("/api/v2/alerts", "/api/v2/alerts/groups"):
        for regex in ("(", "(x)\\1", "a\x00", "(?!x)"):
            out.append(Case(f"receiver {regex!r} {path}", "GET", f"{path}?receiver={_q(regex)}"))
    out.extend(
        [
            Case("get silence: nul id", "GET", "/api/v2/silence/a%00b"),
            Case("delete silence v2: nul id", "DELETE", "/api/v2/silence/a%00b"),
            Case("delete silence v1: nul id", "DELETE", "/api/v1/silences/a%00b"),
            Case("history: nul fingerprint", "GET", "/api/v1/alerts/ab%00cd/history"),
            Case("history: negative limit", "GET", "/api/v1/alerts/abcd/history?limit=-1"),
            Case("history: limit not a number", "GET", "/api/v1/alerts/abcd/history?limit=x"),
            Case("delete rules: nul group", "DELETE", "/api/v1/rules/g%00"),
            Case("explain: nul", "GET", "/api/v1/explain?labels=" + _q('{a="\x00"}')),
            Case("explain: a regex", "GET", "/api/v1/explain?labels=" + _q('{a=~"x"}')),
            Case("explain: a bad regex", "GET", "/api/v1/explain?labels=" + _q('{a=~"("}')),
            Case("explain: nothing", "GET", "/api/v1/explain"),
            Case("suppressed: limit 0", "GET", "/api/v1/suppressed?limit=0"),
            Case("nul in a parameter name", "GET", "/api/v2/alerts?a%00=1"),
            Case("v1 alerts: resolved=maybe", "GET", "/api/v1/alerts?resolved=maybe"),
        ]
    )
    for name, body in RULE_BODIES.items():
        out.append(Case(f"rules: {name}", "POST", "/api/v1/rules", body, "application/yaml"))
    out.append(Case("rules: 300 KB", "POST", "/api/v1/rules", b"#" * 300_000, status=413))
    return out


async def _send(
    session: aiohttp.ClientSession, base: str, case: Case, token: str | None
) -> tuple[int, str]:
    headers = {"Content-Type": case.content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # A large body as a stream (aiohttp warns about sending megabytes as one bytes object).
    data = io.BytesIO(case.body) if case.body and len(case.body) > 1 << 20 else case.body
    async with session.request(
        case.method, URL(base + case.path, encoded=True), data=data, headers=headers
    ) as response:
        return response.status, await response.text(errors="replace")


async def test_every_hostile_request_is_a_4xx_with_a_message(mesh: Mesh) -> None:
    base = mesh.running["alert-engine"].url
    problems: list[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for case in cases():
            for who, token in TOKENS.items():
                status, text = await _send(session, base, case, token)
                if not 400 <= status < 500 or not text.strip():
                    problems.append(f"{case.name} [{who}]: {status} {text[:200]!r}")
                elif who == "write" and case.status is not None and status != case.status:
                    problems.append(f"{case.name} [{who}]: {status}, want {case.status}")
                elif who == "none" and case.method != "GET" and status != 401:
                    problems.append(f"{case.name} [{who}]: {status}, want 401 before anything")
    assert not problems, "\n".join(problems)


async def test_field_names_are_in_the_messages(mesh: Mesh) -> None:
    base = mesh.running["alert-engine"].url
    expected = {
        "alert: nul in a label value": "labels.team: contains a NUL",
        "alert: surrogate in a label value": "labels.team: contains a lone UTF-16 surrogate",
        "alert: year 10000 in UTC": "endsAt: 9999-12-31T23:59:59-23:59 is outside",
        "alert: a 1025-character value": "labels.v: is longer than 1024",
        "alert: nul in generatorURL": "generatorURL: contains a NUL",
        "silence /api/v2/silences: nul in comment": "comment: contains a NUL",
        "silence /api/v2/silences: a backreference": (
            "error parsing regexp: invalid escape sequence: `\\1`"
        ),
        "filter /api/v2/alerts: lookbehind": "invalid or unsupported Perl syntax: `(?<=`",
        "history: nul fingerprint": "path parameter 'fingerprint': contains a NUL",
        "rules: nul escape": "groups[0].rules[0].labels.team: contains a NUL",
        "rules: an alias bomb": "aliases",
    }
    by_name = {c.name: c for c in cases()}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for name, message in expected.items():
            status, text = await _send(session, base, by_name[name], API_TOKEN)
            assert status == 400, (name, status, text)
            # /api/v2 answers errors as a JSON string, as Alertmanager does.
            readable = json.loads(text) if text.startswith('"') else text
            assert message in readable, (name, text)


async def test_status_needs_a_token_and_shows_no_secret(mesh: Mesh) -> None:
    base = mesh.running["alert-engine"].url
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/api/v2/status") as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {READ_TOKEN}"}
        async with session.get(f"{base}/api/v2/status", headers=headers) as response:
            assert response.status == 200
            status = await response.json()
    assert "night-shift" in status["config"]["original"]
    assert status["versionInfo"]["version"]


async def test_a_catastrophic_regex_is_answered(mesh: Mesh, unique: str) -> None:
    """``(a*)*b`` over 1000 a's: 2^1000 steps for a backtracking engine; RE2 is linear
    (the pytest timeout bounds the test; no timing assertion). As a filter and a receiver
    filter (no token needed), and in an active silence checked against the alert."""
    base = mesh.running["alert-engine"].url
    write = {"Authorization": f"Bearer {API_TOKEN}"}
    label = "a" * 1000
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    run = _q(f'run="{unique}"')
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        body = [{"labels": {"alertname": "Redos", "run": unique, "redos": label}}]
        async with session.post(f"{base}/api/v2/alerts", json=body, headers=write) as response:
            assert response.status == 200, await response.text()
        silence = {
            "matchers": [
                {"name": "run", "value": unique, "isRegex": False, "isEqual": True},
                {"name": "redos", "value": "(a*)*b", "isRegex": True, "isEqual": True},
            ],
            "startsAt": started,
            "endsAt": ends,
            "createdBy": "corpus",
            "comment": "a catastrophic regex, checked against every alert",
        }
        async with session.post(f"{base}/api/v2/silences", json=silence, headers=write) as r:
            assert r.status == 200, await r.text()
        redos_b = _q('redos=~"(a*)*b"')
        for path in ("/api/v2/alerts", "/api/v2/alerts/groups"):
            query = f"?filter={run}&filter={redos_b}&receiver={_q('(d*)*x')}"
            async with session.get(URL(base + path + query, encoded=True)) as response:
                assert response.status == 200, await response.text()
                assert await response.json() == []
        redos_a = _q('redos=~"(a*)*a"')
        query = f"?filter={run}&filter={redos_a}"
        async with session.get(URL(base + "/api/v2/alerts" + query, encoded=True)) as response:
            assert response.status == 200, await response.text()
            (found,) = await response.json()
        assert found["labels"]["redos"] == label
        assert found["status"]["silencedBy"] == [], "(a*)*b does not match: not silenced"


async def test_poison_records_are_dead_lettered_and_a_good_alert_is_still_notified(
    infra: Endpoints, mesh: Mesh, sink: Sink, unique: str
) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    now = time.time()
    try:
        # As an older version (or a hand) could have produced them.
        poison = AlertsRouted(
            alerts=[
                RoutedAlert(
                    route_id="0",
                    group_key=f'{{}}:{{alertname="Poison-{unique}"}}',
                    fingerprint="0" * 16,
                    labels={"alertname": f"Poison-{unique}", "team": "db\x00"},
                    starts_at=now,
                    updated_at=now,
                )
            ]
        )
        far = AlertsRouted(
            alerts=[
                RoutedAlert(
                    route_id="0",
                    group_key=f'{{}}:{{alertname="Far-{unique}"}}',
                    fingerprint="1" * 16,
                    labels={"alertname": f"Far-{unique}"},
                    starts_at=now,
                    ends_at=253_402_387_139.0,
                    updated_at=now,
                )
            ]
        )
        signal = SignalObserved(
            source=SignalSource.METRICS,
            kind=SignalKind.ROLLUP,
            name="e2e_error_ratio",
            subject=unique,
            labels={"service": f"poison\x00{unique}"},
            value=0.99,
            observed_at=now,
        )
        key = f"poison-{unique}".encode()
        for topic, event in ((ALERT_GROUPS, poison), (ALERT_GROUPS, far), (SIGNALS, signal)):
            sent = await producer.send_raw(topic.name, key, msgspec.json.encode(event), [])
            await sent
    finally:
        await producer.stop()

    async def ours() -> list:
        return [r for r in await read_all(infra.kafka_bootstrap, DLQ.name) if r.key == key]

    dead = await eventually(ours, until=lambda rs: len(rs) == 3, what="3 dead letters")
    for record in dead:
        assert header(record, "dlq_reason") == b"schema_violation"
        assert header(record, "dlq_service") == b"alert-engine"
    errors = sorted((header(r, "dlq_error") or b"").decode() for r in dead)
    # Refused by the consumer's decoder (opsmesh.kafka.consumer), before any handler.
    assert sum("holds a NUL character" in e for e in errors) == 2, errors
    assert any("alerts[0].ends_at" in e and "253402300799" in e for e in errors), errors

    # After all of the above (and the HTTP corpus), a good alert goes all the way.
    service = f"after-hostile-{unique}"
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    base = mesh.running["alert-engine"].url
    async with aiohttp.ClientSession() as session:
        body = [{"labels": {"alertname": "AfterHostile", "service": service}}]
        async with session.post(f"{base}/api/v2/alerts", json=body, headers=headers) as r:
            assert r.status == 200, await r.text()
        query = _q(f'service="{service}"')
        url = URL(f"{base}/api/v2/alerts?filter={query}", encoded=True)
        async with session.get(url) as r:
            (alert,) = await r.json()

        async def history() -> list:
            path = f"{base}/api/v1/alerts/{alert['fingerprint']}/history"
            async with session.get(path) as response:
                return list((await response.json())["history"]) if response.ok else []

        rows = await eventually(history, until=bool, what="the alert's history (persisted)")
        assert rows[0]["state"] == "firing"

    async def notified() -> list:
        return sink.notifications(service=service)

    (payload, *_) = await eventually(notified, until=bool, what="the good alert's notification")
    assert payload["alerts"][0]["labels"]["alertname"] == "AfterHostile"
    ready = mesh.get_json("alert-engine", "/health/ready")
    assert ready["status"] == "ready", ready
