"""The composition root: the one place alert-engine is wired together."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from alert_engine.core.evaluation import Evaluator
from alert_engine.core.grouping import Dispatcher, Route
from alert_engine.core.rules import ThresholdRule, parse_rules
from alert_engine.pipeline.evaluate_stage import EvaluateStage
from alert_engine.settings import AlertEngineSettings
from alert_engine.storage.alerts import AlertStore
from alert_engine.storage.notification_log import NotificationLog
from opsmesh.clock import Clock
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_ALERT_ENGINE, SIGNALS
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "alert-engine"


def load_rules(paths: tuple[str, ...]) -> list[ThresholdRule]:
    rules: list[ThresholdRule] = []
    for path in paths:
        rules.extend(parse_rules(Path(path).read_text(), source=path))
    return rules


def build(settings: AlertEngineSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    evaluator = Evaluator(load_rules(settings.rules_files))
    route = Route(
        receiver=settings.receiver,
        group_by=settings.group_by,
        group_wait_s=settings.group_wait_s,
        group_interval_s=settings.group_interval_s,
        repeat_interval_s=settings.repeat_interval_s,
    )
    dispatcher = Dispatcher(route)

    def workers() -> list[tuple[str, Worker]]:
        stage = EvaluateStage(
            evaluator=evaluator,
            dispatcher=dispatcher,
            alerts=AlertStore(runtime.pool),
            log=NotificationLog(runtime.pool),
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
            external_url=settings.external_url,
        )
        config = ConsumerConfig(group_id=GROUP_ALERT_ENGINE, topics=(SIGNALS,))
        return [("evaluate", runtime.consumer(config, SignalObserved, stage))]

    def routes(app: web.Application) -> None:
        async def list_rules(_: web.Request) -> web.Response:
            return web.json_response(
                [
                    {
                        "name": r.name,
                        "group": r.group,
                        "signal": r.signal,
                        "op": r.op.value,
                        "threshold": r.threshold,
                        "for_s": r.for_s,
                        "labels": dict(r.labels),
                    }
                    for r in evaluator.rules
                ]
            )

        async def list_alerts(_: web.Request) -> web.Response:
            return web.json_response(
                [
                    {
                        "fingerprint": a.fingerprint,
                        "rule": a.rule,
                        "state": a.state.value,
                        "labels": dict(a.labels),
                        "annotations": dict(a.annotations),
                        "value": a.value,
                        "active_at": a.active_at,
                        "fired_at": a.fired_at,
                    }
                    for a in evaluator.active()
                ]
            )

        app.router.add_get("/api/v1/rules", list_rules)
        app.router.add_get("/api/v1/alerts", list_alerts)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("alert_engine.migrations")],
            readiness=runtime.readiness,
            workers=workers,
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
