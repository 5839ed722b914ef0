"""The notifier's part of configuration reload (``opsmesh.reload`` does the rest:
``POST /-/reload``, SIGHUP, the file watch, the metrics): re-read the receivers file
and, for Alertmanager (Go) templates, its ``templates:`` files, as Alertmanager's reload
does.

Everything is checked before anything changes: the receivers through the shared
Alertmanager loader, and a changed template set by loading it in the renderer. A file
that does not load is refused with its reason and the receivers in use stay. A loaded
one replaces them in the ``ReceiverTable``: requests consumed from then on use it;
deliveries already queued or retrying finish with the configuration they started with,
except those of a removed receiver, which stop before their next attempt and are
dead-lettered with the reason.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer, TemplateError
from notifier.amtemplate.build import RendererUnavailable
from notifier.receivers.config import Receivers, ReceiversError, TemplateLanguage
from notifier.receivers.loading import receivers_from_text
from notifier.receivers.table import ReceiverTable
from opsmesh.clock import Clock
from opsmesh.reload import ConfigReloader, ReloadFailed, ReloadMetrics, file_hash


def templates_digest(receivers: Receivers) -> str | None:
    """The content of the template files the globs match (Go templates only): a reload
    whose templates did not change keeps the loaded set, and so the destinations."""
    if receivers.language is not TemplateLanguage.GO:
        return None
    digest = hashlib.sha256()
    for pattern in receivers.templates:
        for name in sorted(glob.glob(pattern)):
            digest.update(name.encode() + b"\0")
            try:
                digest.update(Path(name).read_bytes())
            except OSError as exc:
                digest.update(f"unreadable: {exc.strerror}".encode())
            digest.update(b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Loaded:
    receivers: Receivers
    templates_digest: str | None


class ReceiversReload:
    """Parse and apply for ``ConfigReloader``. ``renderer``: the Go renderer, made when
    first needed (a reload may switch a Jinja2 file to Alertmanager's templates)."""

    def __init__(
        self,
        table: ReceiverTable,
        *,
        default_webhook_url: str | None,
        language: TemplateLanguage | None,
        renderer: Callable[[], GoRenderer],
    ) -> None:
        self._table = table
        self._default_webhook_url = default_webhook_url
        self._language = language
        self._renderer = renderer
        self._digest = templates_digest(table.receivers)

    def parse(self, content: bytes, path: Path) -> Loaded:
        try:
            receivers = receivers_from_text(
                content.decode(), str(path), self._default_webhook_url, self._language
            )
        except ReceiversError as exc:
            raise ReloadFailed(str(exc)) from None
        except UnicodeDecodeError:
            raise ReloadFailed(f"{path}: not UTF-8 text") from None
        return Loaded(receivers, templates_digest(receivers))

    async def _templates(self, loaded: Loaded) -> AlertmanagerTemplates | None:
        receivers = loaded.receivers
        if receivers.language is not TemplateLanguage.GO:
            return None
        current = self._table.templates
        if (
            current is not None
            and loaded.templates_digest == self._digest
            and current.set.patterns == receivers.templates
        ):
            return current
        try:
            templates = AlertmanagerTemplates(self._renderer(), receivers.templates)
            await templates.check()
        except (TemplateError, RendererUnavailable) as exc:
            raise ReloadFailed(f"templates: {exc}") from None
        return templates

    async def apply(self, loaded: Loaded) -> Mapping[str, object]:
        before = self._table.templates
        templates = await self._templates(loaded)
        replaced = self._table.replace(loaded.receivers, templates)
        self._digest = loaded.templates_digest
        if templates is None:
            template_set = "none"
        else:
            template_set = "kept" if templates is before else "reloaded"
        return {
            "receivers_kept": replaced.kept,
            "receivers_changed": replaced.changed,
            "receivers_added": replaced.added,
            "receivers_removed": replaced.removed,
            "templates": template_set,
        }

    def reloader(
        self, path: Path, *, clock: Clock, registry: CollectorRegistry
    ) -> ConfigReloader[Loaded]:
        return ConfigReloader(
            path,
            parse=self.parse,
            apply=self.apply,
            loaded_hash=file_hash(path),
            clock=clock,
            metrics=ReloadMetrics(registry, prefix="notifier", service="notifier"),
        )
