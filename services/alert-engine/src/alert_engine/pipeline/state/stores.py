"""The engine's PostgreSQL adapters, handed to ``EngineState`` together."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from alert_engine.storage.active_alerts import ActiveAlertStore
from alert_engine.storage.notification_log import NotificationLog
from alert_engine.storage.rule_alerts import RuleAlertStore, SeriesStore
from alert_engine.storage.rule_groups import RuleGroupStore


@dataclass(frozen=True, slots=True)
class Stores:
    rules: RuleAlertStore  # rule alerts' state (what a restart restores the evaluator from)
    series: SeriesStore  # when each absence rule last saw each series
    active: ActiveAlertStore  # the active alerts' rows and history, silences, suppressed
    log: NotificationLog  # one entry per (group, receiver): what was last sent
    rule_groups: RuleGroupStore  # rule groups written through the API

    @classmethod
    def over(cls, pool: AsyncConnectionPool) -> Stores:
        return cls(
            RuleAlertStore(pool),
            SeriesStore(pool),
            ActiveAlertStore(pool),
            NotificationLog(pool),
            RuleGroupStore(pool),
        )
