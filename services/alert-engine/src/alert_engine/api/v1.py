"""The opsmesh REST API (``/api/v1``): rules, alerts, silences, history, explain, and the
notifications held back by rate limits. Described by the OpenAPI document it serves."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml
from aiohttp import web

from alert_engine.api.base import engine_state, expire, write_silence
from alert_engine.api.openapi import openapi_document
from alert_engine.api.shapes import alert_json, bool_param, silence_json
from alert_engine.core.matchers import MatcherError, parse_matchers
from alert_engine.core.rules import Rule, RuleFileError, load_yaml, parse_rules

_MAX_LIMIT = 1000
_MAX_PARAM = 8192  # a group key is at most 4,096 characters (routing.MAX_GROUP_KEY)
# Rule groups are a few KiB; the body limit keeps parsing them (pure-Python YAML) short.
MAX_RULES_BODY = 256 * 1024


def _parse_rule_body(source: str) -> tuple[list[Rule], Any]:
    """The rules and the document, YAML aliases refused (an alias bomb expands
    exponentially on every walk)."""
    parsed = parse_rules(source, source="request body", aliases=False)
    return parsed, load_yaml(source, aliases=False)


class RestApi:
    def register(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/rules", self.rules)
        app.router.add_post("/api/v1/rules", self.put_rules)
        app.router.add_delete("/api/v1/rules/{group}", self.delete_rules)
        app.router.add_get("/api/v1/alerts", self.alerts)
        app.router.add_get("/api/v1/alerts/{fingerprint}/history", self.history)
        app.router.add_get("/api/v1/silences", self.silences)
        app.router.add_post("/api/v1/silences", self.create_silence)
        app.router.add_delete("/api/v1/silences/{silence_id}", self.expire_silence)
        app.router.add_get("/api/v1/explain", self.explain)
        app.router.add_get("/api/v1/suppressed", self.suppressed)
        app.router.add_get("/api/v1/notifications", self.notifications)
        app.router.add_get("/api/v1/openapi.json", self.openapi)

    async def rules(self, request: web.Request) -> web.Response:
        api_groups = set(engine_state(request).api_rule_sources)
        return web.json_response(
            [
                {**_rule_json(r), "origin": "api" if r.group in api_groups else "file"}
                for r in engine_state(request).evaluator.rules
            ]
        )

    async def put_rules(self, request: web.Request) -> web.Response:
        """Create or replace rule groups from a rule file (YAML or JSON) in the body."""
        body = await request.read()
        if len(body) > MAX_RULES_BODY:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_RULES_BODY,
                actual_size=len(body),
                text=f"a rule file over the API is at most {MAX_RULES_BODY} bytes",
            )
        try:
            source = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise web.HTTPBadRequest(text=f"the body is not UTF-8 (byte {exc.start})") from None
        try:
            # Parsing YAML is pure Python (~7 s per MiB): off the event loop.
            parsed, document = await asyncio.to_thread(_parse_rule_body, source)
        except RuleFileError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        except UnicodeEncodeError:  # YAML/JSON escapes of surrogates ("\ud852") decode to text
            # that is not valid Unicode and cannot be stored or rendered.
            raise web.HTTPBadRequest(text="the rule file has invalid Unicode escapes") from None
        groups = sorted({r.group for r in parsed})
        if not groups:
            raise web.HTTPBadRequest(text="the body defines no rule group")
        clash = set(groups) & engine_state(request).file_groups
        if clash:
            raise web.HTTPConflict(text=f"group(s) {sorted(clash)} come from rule files")
        for raw_group in document["groups"]:  # the state takes its lock only to apply
            text = yaml.safe_dump({"groups": [raw_group]}, sort_keys=False)
            await engine_state(request).put_rule_group(str(raw_group["name"]), text)
        return web.json_response({"groups": groups, "rules": len(parsed)}, status=201)

    async def delete_rules(self, request: web.Request) -> web.Response:
        name = request.match_info["group"]
        if name in engine_state(request).file_groups:
            raise web.HTTPConflict(text=f"group {name!r} comes from a rule file")
        deleted = await engine_state(request).delete_rule_group(name)
        if not deleted:
            raise web.HTTPNotFound(text=f"no rule group {name!r} created through the API")
        return web.json_response({"deleted": name})

    async def alerts(self, request: web.Request) -> web.Response:
        include_resolved = bool_param(request, "resolved", default=False)
        # The console polls pending alerts every few seconds: without the (possibly
        # 10,000) routed alerts, that poll costs the engine next to nothing.
        pending_only = bool_param(request, "pending_only", default=False)
        now = engine_state(request).clock.now()
        out = []
        routed = [] if pending_only else engine_state(request).engine.alerts.all()
        inhibitor = engine_state(request).engine.inhibitor(now) if routed else None
        for alert in sorted(routed, key=lambda a: a.starts_at):
            if alert.resolved(now) and not include_resolved:
                continue
            item = alert_json(alert, engine_state(request).engine.view(alert, now, inhibitor))
            item["source"] = alert.source.value
            item["resolved"] = alert.resolved(now)
            out.append(item)
        pending = [
            {
                "fingerprint": a.fingerprint,
                "rule": a.rule,
                "state": a.state.value,
                "labels": dict(a.labels),
                "value": a.value,
                "active_at": a.active_at,
            }
            for a in engine_state(request).evaluator.active()
            if a.state.value == "pending"
        ]
        return web.json_response({"alerts": out, "pending": pending})

    async def history(self, request: web.Request) -> web.Response:
        limit = _limit(request)
        rows = await engine_state(request).stores.active.history(
            request.match_info["fingerprint"], limit
        )
        if (
            not rows
            and engine_state(request).engine.alerts.get(request.match_info["fingerprint"]) is None
        ):
            raise web.HTTPNotFound(text="no alert with that fingerprint")
        return web.json_response(
            {"fingerprint": request.match_info["fingerprint"], "history": rows}
        )

    async def silences(self, request: web.Request) -> web.Response:
        now = engine_state(request).clock.now()
        return web.json_response(
            [silence_json(s, now) for s in engine_state(request).engine.silences.all()]
        )

    async def create_silence(self, request: web.Request) -> web.Response:
        stored = await write_silence(request)
        return web.json_response(
            silence_json(stored, engine_state(request).clock.now()), status=201
        )

    async def expire_silence(self, request: web.Request) -> web.Response:
        expired = await expire(request)
        return web.json_response(silence_json(expired, engine_state(request).clock.now()))

    async def explain(self, request: web.Request) -> web.Response:
        text = request.query.get("labels", "")
        if not text:
            raise web.HTTPBadRequest(
                text='labels is required, e.g. labels={alertname="X",team="db"}'
            )
        try:
            matchers = parse_matchers(text)
        except MatcherError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if any(m.type.value != "=" for m in matchers):
            raise web.HTTPBadRequest(text='explain takes a label set: name="value" pairs only')
        labels = {m.name: m.value for m in matchers}
        return web.json_response(
            engine_state(request).engine.explain(labels, engine_state(request).clock.now())
        )

    async def suppressed(self, request: web.Request) -> web.Response:
        return web.json_response(
            await engine_state(request).stores.active.list_suppressed(_limit(request))
        )

    async def notifications(self, request: web.Request) -> web.Response:
        """The notification log: the last notification per (group, receiver), why it was
        sent, and its idempotency key (the notifier's deliveries are found by it)."""
        wanted = {
            name: request.query.get(name) or None
            for name in ("fingerprint", "group_key", "receiver")
        }
        if any(v is not None and len(v) > _MAX_PARAM for v in wanted.values()):
            raise web.HTTPBadRequest(text=f"a parameter is at most {_MAX_PARAM} characters")
        return web.json_response(
            await engine_state(request).stores.log.entries(**wanted, limit=_limit(request))
        )

    async def openapi(self, _: web.Request) -> web.Response:
        return web.json_response(openapi_document())


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit must be between 1 and {_MAX_LIMIT}")
    return limit


def _rule_json(rule: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rule.name, "group": getattr(rule, "group", "")}
    for field in (
        "kind",
        "signal",
        "threshold",
        "for_s",
        "keep_firing_for_s",
        "stat",
        "by",
        "absent_for_s",
        "forget_after_s",
        "window_s",
        "quiet_for_s",
    ):
        if hasattr(rule, field):
            out[field] = getattr(rule, field)
    if hasattr(rule, "op"):
        out["op"] = str(rule.op)
    out["labels"] = dict(getattr(rule, "labels", {}))
    out["annotations"] = dict(getattr(rule, "annotations", {}))
    return out
