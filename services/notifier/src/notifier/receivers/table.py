"""The receivers in use, and their destinations: what a reload replaces.

Destinations are built on first use (the HTTP session exists only once the service
runs) and kept while their receiver's configuration and templates stay the same, so an
unchanged receiver keeps its lanes, breakers and rate limits across a reload. A changed
receiver gets new destinations with a newer ``generation`` (new lanes); the jobs already
queued keep the destinations they were queued with. A removed receiver is remembered
with the reload that removed it, which is the reason its deliveries are dead-lettered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from notifier.amtemplate import AlertmanagerTemplates
from notifier.pipeline.lanes import Destination
from notifier.receivers.config import ReceiverConfig, Receivers
from opsmesh.clock import Clock

BuildDestinations = Callable[[ReceiverConfig, AlertmanagerTemplates | None, int], list[Destination]]


@dataclass(frozen=True, slots=True)
class Replaced:
    kept: int  # same configuration: destinations (lanes, breakers) kept
    changed: int
    added: int
    removed: int


class ReceiverTable:
    def __init__(
        self,
        receivers: Receivers,
        templates: AlertmanagerTemplates | None,
        build: BuildDestinations,
        clock: Clock,
    ) -> None:
        self._receivers = receivers
        self._templates = templates
        self._build = build
        self._clock = clock
        self._generation = 0
        self._built: dict[str, list[Destination]] = {}
        self._removed: dict[str, float] = {}  # name → when a reload removed it

    @property
    def receivers(self) -> Receivers:
        return self._receivers

    @property
    def templates(self) -> AlertmanagerTemplates | None:
        return self._templates

    def destinations(self, name: str) -> Sequence[Destination] | None:
        built = self._built.get(name)
        if built is None:
            config = self._receivers.get(name)
            if config is None:
                return None
            built = self._build(config, self._templates, self._generation)
            self._built[name] = built
        return built

    def removed(self, name: str) -> str | None:
        """Why ``name`` is no longer configured, when a reload removed it; else None."""
        if name in self._receivers.by_name:
            return None
        at = self._removed.get(name)
        if at is None:
            return None
        when = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
        return f"receiver {name!r} was removed by the configuration reload at {when}"

    def missing(self, name: str) -> str:
        return self.removed(name) or f"receiver {name!r} is not configured"

    def replace(self, receivers: Receivers, templates: AlertmanagerTemplates | None) -> Replaced:
        """A reloaded configuration, from the next lookup on."""
        old = self._receivers.by_name
        new = receivers.by_name
        same_templates = templates is self._templates
        self._generation += 1
        kept = changed = 0
        built: dict[str, list[Destination]] = {}
        for name, config in new.items():
            if name not in old:
                continue
            if same_templates and old[name] == config:
                kept += 1
                if name in self._built:
                    built[name] = self._built[name]
            else:
                changed += 1
        now = self._clock.now()
        gone = [name for name in old if name not in new]
        for name in gone:
            self._removed[name] = now
        for name in new:
            self._removed.pop(name, None)
        self._receivers = receivers
        self._templates = templates
        self._built = built
        return Replaced(
            kept=kept, changed=changed, added=len(new) - kept - changed, removed=len(gone)
        )
