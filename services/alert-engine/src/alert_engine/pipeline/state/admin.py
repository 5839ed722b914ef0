"""Administration of the engine's shared state: restore at start, the periodic sync with
what other replicas wrote, rules, silences, maintenance and the notification log's
retention.

Each operation is split into a read or write without the engine lock and an apply under
it (the façade takes the lock, ``state/facade.py``). An apply checks that its read is
still current: ``silences_version`` and ``rules_generation`` are bumped by every local
change, and the active alerts keep the newer of two versions of an alert by
``updated_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.decision import LogEntry
from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen
from alert_engine.core.rules import Rule, RuleFileError, parse_rules
from alert_engine.core.silences import Silence, Silences
from alert_engine.pipeline.state.held import RESOLVED_RETENTION_S, Held, LogKey
from alert_engine.pipeline.state.metrics import EngineMetrics
from alert_engine.pipeline.state.stores import Stores
from alert_engine.storage.notification_log import LoggedAt
from opsmesh.logging import get_logger

log = get_logger(__name__)

SYNC_MARGIN_S = 10.0  # how far back each incremental re-read of the alerts reaches

RuleSet = tuple[tuple[int, float], dict[str, str], list[Rule]]  # version, sources, parsed


@dataclass(frozen=True, slots=True)
class Restored:
    """Everything a start reads from PostgreSQL (a restart or failover loses nothing)."""

    active: list[AlertInstance]  # rule alerts, pending and firing
    series: list[SeriesSeen]
    alerts: list[StoredAlert]
    silences: list[Silence]
    entries: dict[LogKey, LogEntry]
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class Changes:
    """What other replicas wrote, and the local versions the read started from."""

    alerts: list[StoredAlert]
    silences: list[Silence]
    rules: RuleSet | None  # None: the rule groups did not change
    silences_version: int
    rules_generation: int


@dataclass(frozen=True, slots=True)
class Collected:
    """What maintenance forgot in memory, to delete from PostgreSQL."""

    alerts: list[tuple[str, float]]  # each row as it was judged: one updated since stays
    silences: list[str]


class Admin:
    def __init__(
        self,
        held: Held,
        *,
        stores: Stores,
        file_rules: Sequence[Rule],
        metrics: EngineMetrics,
        origin: str,
    ) -> None:
        self._held = held
        self._stores = stores
        self._file_rules = list(file_rules)
        self._metrics = metrics
        self._origin = origin
        self.api_rule_sources: dict[str, str] = {}
        self._rules_version: tuple[int, float] = (0, 0.0)

    # -- restore and sync ----------------------------------------------------------

    async def read_all(self) -> Restored:
        stores = self._stores
        return Restored(
            await stores.rules.load(),
            await stores.series.load(),
            await stores.active.load(),
            await stores.active.load_silences(),
            await stores.log.load(),
            await self.read_rules(),
        )

    def restore(self, read: Restored, now: float) -> None:
        held = self._held
        held.evaluator.restore(read.active)
        held.evaluator.restore_series(read.series)
        held.replace_active(read.alerts, now)
        held.engine.silences = Silences(read.silences)
        held.entries = read.entries
        self.apply_rules(read.rules)

    async def read_changes(self) -> Changes:
        """Alerts other replicas wrote since the last sync, silences, rule groups."""
        held = self._held
        silences_version, rules_generation = held.silences_version, held.rules_generation
        active = self._stores.active
        alerts = await active.load(held.synced_to - SYNC_MARGIN_S, not_from=self._origin)
        silences = await active.load_silences()
        rules = None
        if await self._stores.rule_groups.version() != self._rules_version:
            rules = await self.read_rules()
        return Changes(alerts, silences, rules, silences_version, rules_generation)

    def apply_changes(self, changes: Changes, now: float) -> None:
        """Applied unless a local change made the read stale (the active alerts keep the
        newer version of each alert by themselves)."""
        held = self._held
        held.engine.alerts.restore(changes.alerts, now)
        held.synced(changes.alerts)
        if held.silences_version == changes.silences_version:
            held.engine.silences = Silences(changes.silences)
        if changes.rules is not None and held.rules_generation == changes.rules_generation:
            self.apply_rules(changes.rules)

    # -- rules ---------------------------------------------------------------------

    @property
    def file_groups(self) -> set[str]:
        return {r.group for r in self._file_rules}

    async def read_rules(self) -> RuleSet:
        version = await self._stores.rule_groups.version()
        sources = await self._stores.rule_groups.load()
        parsed: list[Rule] = []
        for name, source in sorted(sources.items()):
            try:
                parsed.extend(parse_rules(source, source=f"api:{name}", aliases=False))
            except RuleFileError as exc:
                # Stored before a check that now refuses it: leaving it out keeps every
                # other group (and the engine's start) working; the log says which.
                log.error("stored rule group skipped", group=name, error=str(exc)[:500])
        return version, sources, parsed

    def apply_rules(self, rules: RuleSet, generation: int | None = None) -> None:
        """A new evaluator over file + API rules, carrying over the state of rules that
        stay. With ``generation``: only if no other reload applied since that read began
        (its read is at least as new; a change it missed comes with the next sync)."""
        held = self._held
        if generation is not None and held.rules_generation != generation:
            return
        version, sources, parsed = rules
        self._rules_version = version
        self.api_rule_sources = sources
        old = held.evaluator
        evaluator = Evaluator(
            [*self._file_rules, *parsed], forget_after_s=old.default_forget_after_s
        )
        evaluator.restore(old.active())
        evaluator.restore_series(old.seen_series())
        held.evaluator = evaluator
        held.rules_generation += 1

    # -- silences ------------------------------------------------------------------

    async def durable_silences(self) -> Silences:
        """The silences as PostgreSQL has them (another replica may have written the one
        a request changes since this replica's last sync)."""
        return Silences(await self._stores.active.load_silences())

    def apply_silences(self, changed: Sequence[Silence]) -> None:
        for one in changed:
            self._held.engine.silences.restore(one)
        self._held.silences_version += 1

    # -- maintenance ---------------------------------------------------------------

    def collect(
        self,
        alerts: Sequence[StoredAlert],
        now: float,
        retention_days: float,
        owns: Callable[[str], bool],
    ) -> Collected:
        """Forget resolved alerts nobody needs (``alerts``: a full re-read, which also
        forgets what other replicas collected) and expired silences; the alert gauges."""
        held = self._held
        held.replace_active(alerts, now)
        engine = held.engine
        active = engine.alerts
        active.refresh_activity(now)
        # Only a group's owner forgets its alerts, so a resolve another replica still
        # has to send is never collected under it.
        gone = [
            (fp, alert.updated_at)
            for fp in active.collectable(now, RESOLVED_RETENTION_S, engine.in_groups())
            if (alert := active.get(fp)) is not None
            and all(owns(key) for _, key in engine.routes_for(alert))
        ]
        for fingerprint, _ in gone:
            active.remove(fingerprint)
        purged = engine.silences.purge(now - retention_days * 86400)
        if purged:
            held.silences_version += 1
        firing = len(active.firing(now))
        self._metrics.alerts.labels("firing").set(firing)
        self._metrics.alerts.labels("resolved").set(len(active) - firing)
        return Collected(gone, purged)

    # -- the notification log's retention ------------------------------------------

    def purgeable(self, found: Sequence[LoggedAt], owns: Callable[[str], bool]) -> list[LoggedAt]:
        """Expired entries this replica may delete: its own groups', not active here."""
        active = {g.key for g in self._held.engine.dispatcher.groups()}
        return [e for e in found if owns(e[0]) and e[0] not in active]

    def forget_entries(
        self, found: Sequence[LoggedAt], chosen: Sequence[LoggedAt], owns: Callable[[str], bool]
    ) -> None:
        entries = self._held.entries
        deleting = set(chosen)
        for group_key, receiver, notified_at in found:
            entry = entries.get((group_key, receiver))
            if entry is None or entry.notified_at != notified_at:
                continue  # logged again since it was read
            # Ours and deleted, or another replica's: that one is read again from the
            # table if its partition is ever assigned here, so the copy in memory only
            # costs memory.
            if (group_key, receiver, notified_at) in deleting or not owns(group_key):
                del entries[(group_key, receiver)]
